import { createHash } from "node:crypto"
import { RawImageCheck, TarManifestCheck, TarScanner, type RawRange, type TreeEntry } from "@backup-actions/archive"
import type { DiskLayout } from "@backup-actions/contracts"

/**
 * A check of an archive's content against checksums that came from its source (EBS's
 * checksum of each block, the SHA-256 of each file as read from the mounted filesystem, the
 * SHA-256 of a dump tool's output), never from the compressor. It is fed the archive's
 * decompressed bytes as they are read back from S3, in order, so it holds no more than a
 * range's hash, a header, or a tar entry in memory.
 */
export interface ContentCheck {
  /** Takes the next decompressed bytes, in order. */
  readonly update: (chunk: Buffer) => void
  /** Once every byte was given: what was found wrong, each a short sentence; empty when the content holds. */
  readonly finish: () => ReadonlyArray<string>
}

/** At most this many problems are named; the rest are counted. */
export const NAMED_PROBLEMS = 5

/** Problems as one line: the first few named, the others counted. */
export const summarizeProblems = (problems: ReadonlyArray<string>): string =>
  problems.length <= NAMED_PROBLEMS
    ? problems.join("; ")
    : `${problems.slice(0, NAMED_PROBLEMS).join("; ")}; and ${problems.length - NAMED_PROBLEMS} more`

const messageOf = (error: unknown): string => (error instanceof Error ? error.message : String(error))

/**
 * Runs a parser's steps until one throws (a tar it cannot parse, a manifest line that does
 * not decode); after that the rest of the stream is ignored and the reason is kept.
 */
const guard = () => {
  let reason: string | undefined
  return {
    run: (work: () => void): void => {
      if (reason !== undefined) return
      try {
        work()
      } catch (error) {
        reason = messageOf(error)
      }
    },
    reason: () => reason
  }
}

/** A raw disk image against its manifest's ranges: each range's SHA-256, zeros elsewhere, the image's size. */
export const rawImageContentCheck = (ranges: Iterable<RawRange>, imageBytes: number): ContentCheck => {
  const check = new RawImageCheck(ranges, imageBytes)
  const guarded = guard()
  let problems: ReadonlyArray<string> = []
  return {
    update: (chunk) => guarded.run(() => check.feed(chunk)),
    finish: () => {
      guarded.run(() => (problems = check.finish()))
      const reason = guarded.reason()
      return reason === undefined ? problems : [`the image cannot be compared with its manifest: ${reason}`]
    }
  }
}

/**
 * A tar against its manifest: every entry's type, mode, owner, size, time and link target,
 * each regular file's SHA-256, and the members the disk layout names. The manifest lists the
 * tar's entries in the tar's order (it was made from the same stream), so each entry is
 * compared as it is read and nothing per entry is held.
 */
export const tarContentCheck = (manifest: () => Iterable<TreeEntry>, layout: DiskLayout | undefined): ContentCheck => {
  const check = new TarManifestCheck(manifest, layout)
  const comparing = guard()
  const scanner = new TarScanner((entry) => comparing.run(() => check.entry(entry)))
  const reading = guard()
  return {
    update: (chunk) => reading.run(() => scanner.push(chunk)),
    finish: () => {
      reading.run(() => scanner.end())
      const unreadable = reading.reason()
      if (unreadable !== undefined) return [`the tar cannot be read: ${unreadable}`]
      let problems: ReadonlyArray<string> = []
      comparing.run(() => (problems = check.finish()))
      const reason = comparing.reason()
      return reason === undefined ? problems : [`the tar cannot be compared with its manifest: ${reason}`]
    }
  }
}

/** A stream against the SHA-256 (hex) and size of the source it was made from: a dump tool's output. */
export const streamContentCheck = (expected: { readonly sha256: string; readonly bytes: number }): ContentCheck => {
  const hash = createHash("sha256")
  let bytes = 0
  let found: ReadonlyArray<string> | undefined
  const judge = (): ReadonlyArray<string> => {
    if (bytes !== expected.bytes) return [`${bytes} bytes read back, ${expected.bytes} were written`]
    const actual = hash.digest("hex")
    return actual === expected.sha256 ? [] : [`SHA-256 ${actual} read back, ${expected.sha256} was written`]
  }
  return {
    update: (chunk) => {
      hash.update(chunk)
      bytes += chunk.length
    },
    finish: () => (found ??= judge())
  }
}
