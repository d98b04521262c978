/** S3 multipart limits. */
export const MIN_PART_SIZE = 5 * 1024 * 1024
export const MAX_PART_SIZE = 5 * 1024 * 1024 * 1024
export const MAX_PARTS = 10_000
/** Small parts keep memory low; 8 MiB covers inputs up to about 78 GiB. */
export const DEFAULT_PART_SIZE = 8 * 1024 * 1024

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

/** An upper bound for the compressed size of `inputBytes`: zstd and gzip add a little to incompressible data. */
export const compressedUpperBound = (inputBytes: number): number => Math.ceil(inputBytes * 1.01) + 1024 * 1024
