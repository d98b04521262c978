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
