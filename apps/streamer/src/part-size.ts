/** S3 multipart limits. */
export const MIN_PART_SIZE = 5 * 1024 * 1024
export const MAX_PART_SIZE = 5 * 1024 * 1024 * 1024
export const MAX_PARTS = 10_000
/** Small parts keep memory low; 8 MiB covers inputs up to about 78 GiB. */
export const DEFAULT_PART_SIZE = 8 * 1024 * 1024
/** Parts of each size before a growing schedule doubles it. */
export const PARTS_PER_STEP = 250

const MiB = 1024 * 1024

/**
 * The part size for an upload of at most `maxBytes`: the default, or larger (rounded up to
 * a whole MiB) when that many bytes would not fit in 10,000 parts. Compressed output can be
 * slightly larger than its input, so callers pass an upper bound with headroom.
 */
export const partSizeFor = (maxBytes: number, preferred: number = DEFAULT_PART_SIZE): number => {
  const needed = Math.ceil(maxBytes / MAX_PARTS / MiB) * MiB
  const size = Math.max(preferred, needed, MIN_PART_SIZE)
  if (size > MAX_PART_SIZE) {
    throw new RangeError(`${maxBytes} bytes do not fit in ${MAX_PARTS} parts of at most ${MAX_PART_SIZE} bytes`)
  }
  return size
}

/**
 * The sizes an upload's parts are cut at, by part number: `first` for the first
 * PARTS_PER_STEP parts, doubling every PARTS_PER_STEP parts until `largest`. Parts are held in
 * memory while they upload, and an upper bound (a volume's declared size) is often far above
 * what is written (a sparse disk compresses to little): sizes that grow with the part number
 * keep the parts of a small archive small, whatever its bound, while 10,000 parts still hold
 * the bound. A pure function of the part number, so that a resumed upload cuts its remaining
 * parts as the first attempt would have.
 */
export interface PartSchedule {
  readonly first: number
  readonly largest: number
}

/** The size part `partNumber` (from 1) is cut at. */
export const partSizeAt = (schedule: PartSchedule, partNumber: number): number => {
  const step = Math.floor((Math.max(1, partNumber) - 1) / PARTS_PER_STEP)
  // The exponent is bounded only to keep the product finite: the cap applies long before.
  return Math.min(schedule.largest, schedule.first * 2 ** Math.min(step, 16))
}

/** The bytes 10,000 parts cut by the schedule hold. */
export const scheduleCapacity = (schedule: PartSchedule): number => {
  let total = 0
  for (let first = 1; first <= MAX_PARTS; first += PARTS_PER_STEP) {
    total += partSizeAt(schedule, first) * Math.min(PARTS_PER_STEP, MAX_PARTS - first + 1)
  }
  return total
}

/**
 * The schedule for an upload of at most `maxBytes`: DEFAULT_PART_SIZE first, growing to the
 * smallest largest size (a whole MiB) with which 10,000 parts hold `maxBytes`. Up to about
 * 78 GiB that is 8 MiB throughout, as with `partSizeFor`. A bound so large that a growing
 * schedule cannot hold it even at 5 GiB parts gets `partSizeFor`'s one size throughout.
 */
export const partScheduleFor = (maxBytes: number): PartSchedule => {
  const uniform = partSizeFor(maxBytes)
  const growing = (largest: number): PartSchedule => ({ first: DEFAULT_PART_SIZE, largest })
  if (scheduleCapacity(growing(MAX_PART_SIZE)) < maxBytes) return { first: uniform, largest: uniform }
  // The smallest whole-MiB cap that holds the bound: capacity grows with the cap.
  let low = DEFAULT_PART_SIZE / MiB
  let high = MAX_PART_SIZE / MiB
  while (low < high) {
    const middle = Math.floor((low + high) / 2)
    if (scheduleCapacity(growing(middle * MiB)) >= maxBytes) high = middle
    else low = middle + 1
  }
  return growing(low * MiB)
}

/**
 * The number the ledger records for a schedule (its `partSize` field), which a resumed upload
 * must match, as it had to match the single part size before schedules. A uniform schedule is
 * recorded as its one size, so that an upload recorded before schedules still resumes. A
 * growing schedule is recorded as its largest size plus, in bytes, how many MiB its first size
 * is below it: within a few KiB of its largest size, never a whole MiB (so never a uniform
 * schedule's), and distinct for every pair of whole-MiB sizes.
 */
export const scheduleId = (schedule: PartSchedule): number =>
  schedule.largest + Math.max(0, Math.round((schedule.largest - schedule.first) / MiB))

/** One size for every part: what a caller that gives a single part size gets. */
export const uniformSchedule = (partSize: number): PartSchedule => ({ first: partSize, largest: partSize })

/** An upper bound for the compressed size of `inputBytes`: zstd and gzip add a little to incompressible data. */
export const compressedUpperBound = (inputBytes: number): number => Math.ceil(inputBytes * 1.01) + 1024 * 1024
