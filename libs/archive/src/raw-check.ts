import { createHash, type Hash } from "node:crypto"

/** One manifest line of a raw image: a range that holds data, with the SHA-256 (base64) of its bytes. */
export interface RawRange {
  readonly offset: number
  readonly length: number
  readonly sha256: string
  /** The EBS block index, when the range is one block (direct mode). */
  readonly block?: number | undefined
}

const ZEROS = Buffer.alloc(1024 * 1024)

/** The offset of the first byte that is not zero, or -1. Compares a MiB at a time natively. */
export const firstNonZero = (bytes: Buffer): number => {
  for (let start = 0; start < bytes.length; start += ZEROS.length) {
    const slice = bytes.subarray(start, Math.min(bytes.length, start + ZEROS.length))
    if (!slice.equals(ZEROS.subarray(0, slice.length))) {
      for (let index = 0; index < slice.length; index += 1) if (slice[index] !== 0) return start + index
    }
  }
  return -1
}

/**
 * Checks a raw disk image, fed in order, against its manifest: every listed range must have
 * the listed SHA-256, every byte outside the ranges must be zero, and the image must have the
 * manifest's size. Ranges are pulled one at a time, so memory does not grow with the image.
 */
export class RawImageCheck {
  private offset = 0
  private current: { readonly range: RawRange; readonly hash: Hash } | undefined
  private lastEnd = 0
  private ranges: Iterator<RawRange>
  private exhausted = false
  private broken = false
  private reportedGapAt = -1
  private readonly problems: Array<string> = []
  private suppressed = 0
  /** Ranges checked and found equal. */
  matched = 0

  constructor(
    ranges: Iterable<RawRange>,
    private readonly imageBytes: number,
    private readonly maxProblems = 20
  ) {
    this.ranges = ranges[Symbol.iterator]()
  }

  private problem(text: string): void {
    if (this.problems.length < this.maxProblems) this.problems.push(text)
    else this.suppressed += 1
  }

  private pull(): void {
    if (this.current !== undefined || this.exhausted || this.broken) return
    const next = this.ranges.next()
    if (next.done === true) {
      this.exhausted = true
      return
    }
    const range = next.value
    if (range.offset < this.lastEnd || range.length <= 0) {
      this.problem(`the manifest's range at offset ${range.offset} (length ${range.length}) is out of order or empty; the rest of the image was not compared`)
      this.broken = true
      return
    }
    this.lastEnd = range.offset + range.length
    this.current = { range, hash: createHash("sha256") }
  }

  private describe(range: RawRange): string {
    return range.block === undefined ? `the range at offset ${range.offset} (${range.length} bytes)` : `block ${range.block} (offset ${range.offset})`
  }

  /** Feeds the next bytes of the image; `zeros` stands for that many zero bytes without a buffer. */
  feed(bytes: Buffer | { readonly zeros: number }): void {
    const total = Buffer.isBuffer(bytes) ? bytes.length : bytes.zeros
    let at = 0
    while (at < total) {
      this.pull()
      const current = this.current
      const position = this.offset
      if (current === undefined || position < current.range.offset) {
        // Outside every listed range: zeros only.
        const gapEnd = current === undefined ? total : Math.min(total, at + (current.range.offset - position))
        if (Buffer.isBuffer(bytes) && !this.broken) {
          const found = firstNonZero(bytes.subarray(at, gapEnd))
          if (found >= 0 && this.reportedGapAt !== (current?.range.offset ?? -2)) {
            this.reportedGapAt = current?.range.offset ?? -2
            this.problem(`byte ${position + found} is not zero, but the manifest lists no data there`)
          }
        }
        this.offset += gapEnd - at
        at = gapEnd
        continue
      }
      const rangeEnd = current.range.offset + current.range.length
      const take = Math.min(total - at, rangeEnd - position)
      if (Buffer.isBuffer(bytes)) current.hash.update(bytes.subarray(at, at + take))
      else for (let left = take; left > 0; left -= ZEROS.length) current.hash.update(ZEROS.subarray(0, Math.min(left, ZEROS.length)))
      this.offset += take
      at += take
      if (this.offset === rangeEnd) {
        const actual = current.hash.digest("base64")
        if (actual === current.range.sha256) this.matched += 1
        else this.problem(`${this.describe(current.range)}: SHA-256 ${actual} differs from the manifest's ${current.range.sha256}`)
        this.current = undefined
      }
    }
  }

  /** Ends the image: its size and any range it never reached count too. Returns the problems found. */
  finish(): ReadonlyArray<string> {
    if (this.offset !== this.imageBytes) this.problem(`the image holds ${this.offset} bytes; the manifest says ${this.imageBytes}`)
    if (this.current !== undefined) {
      const range = this.current.range
      this.problem(
        this.offset <= range.offset
          ? `${this.describe(range)} is listed in the manifest but lies past the image's last byte`
          : `${this.describe(range)} ends past the image's last byte`
      )
    }
    this.current = undefined
    if (!this.broken) {
      for (let next = this.ranges.next(); next.done !== true; next = this.ranges.next()) {
        this.problem(`${this.describe(next.value)} is listed in the manifest but lies past the image's last byte`)
      }
    }
    return this.suppressed === 0 ? [...this.problems] : [...this.problems, `and ${this.suppressed} more differences`]
  }

  get bytesSeen(): number {
    return this.offset
  }
}

/**
 * A set of block indexes from 0 to `capacity - 1`, one bit each, so that the blocks of any
 * volume fit in little memory (a 16 TiB volume's 512 KiB blocks take 4 MiB).
 */
export class BlockSet {
  private readonly bits: Uint8Array
  private count = 0

  constructor(readonly capacity: number) {
    this.bits = new Uint8Array(Math.ceil(Math.max(0, capacity) / 8))
  }

  /** Adds a block; false (and nothing added) when the index lies outside the set's capacity. */
  add(index: number): boolean {
    if (!Number.isInteger(index) || index < 0 || index >= this.capacity) return false
    const byte = index >>> 3
    const mask = 1 << (index & 7)
    const current = this.bits[byte] ?? 0
    if ((current & mask) === 0) {
      this.bits[byte] = current | mask
      this.count += 1
    }
    return true
  }

  has(index: number): boolean {
    if (!Number.isInteger(index) || index < 0 || index >= this.capacity) return false
    return ((this.bits[index >>> 3] ?? 0) & (1 << (index & 7))) !== 0
  }

  get size(): number {
    return this.count
  }

  /** The indexes in this set and not in `other`, in order. */
  *without(other: BlockSet): Generator<number> {
    for (let byte = 0; byte < this.bits.length; byte += 1) {
      const mine = this.bits[byte] ?? 0
      if (mine === 0) continue
      for (let bit = 0; bit < 8; bit += 1) {
        const index = byte * 8 + bit
        if ((mine & (1 << bit)) !== 0 && !other.has(index)) yield index
      }
    }
  }
}

const nameSome = (indexes: Iterable<number>, limit: number): { readonly count: number; readonly named: string } => {
  const named: Array<number> = []
  let count = 0
  for (const index of indexes) {
    if (named.length < limit) named.push(index)
    count += 1
  }
  return { count, named: `${named.join(", ")}${count > named.length ? ` and ${count - named.length} more` : ""}` }
}

/**
 * Compares the blocks a snapshot lists with the blocks that were written to it: a block
 * written but not listed would read back as whatever EBS makes of a block never written (not
 * zeros on an encrypted snapshot), a block listed but never written holds data nobody put
 * there. Each kind is one problem, naming the first `limit` indexes.
 */
export const blockSetProblems = (written: BlockSet, listed: BlockSet, snapshot: string, limit = 20): ReadonlyArray<string> => {
  const missing = nameSome(written.without(listed), limit)
  const extra = nameSome(listed.without(written), limit)
  return [
    ...(missing.count === 0 ? [] : [`${missing.count} blocks written to ${snapshot} are missing from its block list: ${missing.named}`]),
    ...(extra.count === 0 ? [] : [`${extra.count} blocks in ${snapshot}'s block list were never written: ${extra.named}`])
  ]
}
