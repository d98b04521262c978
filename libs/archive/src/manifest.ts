import { closeSync, openSync, readSync } from "node:fs"
import { Either, ParseResult, Schema } from "effect"
import { DiskLayout } from "@backup-actions/contracts"
import type { RawRange } from "./raw-check"

/*
 * The manifests the streamer writes beside its archives, as their readers decode them: a
 * header line that says what the archive is, then one line per range of a raw image or per
 * entry of a file-level archive.
 */

const Checksum = Schema.Struct({ algorithm: Schema.Literal("SHA256"), type: Schema.Literal("COMPOSITE"), value: Schema.String })
const Compression = Schema.Literal("zstd", "gzip")

/**
 * The snapshot a raw image was read from, as DescribeSnapshots described it when it was
 * archived: what a restore needs to make the new snapshot like it (its size in GiB, and its
 * encryption with the key's ARN).
 */
export const RawImageSource = Schema.Struct({
  snapshotId: Schema.String,
  volumeSize: Schema.optional(Schema.Number),
  encrypted: Schema.Boolean,
  kmsKeyId: Schema.optional(Schema.String)
})
export type RawImageSource = typeof RawImageSource.Type

/**
 * The first line of a raw image's manifest (the streamer's manifest.ts writes it); `source` is
 * absent in manifests written before it was recorded, and for images of no snapshot.
 */
export const RawImageHeader = Schema.Struct({
  kind: Schema.Literal("backup-actions/raw-image-manifest"),
  version: Schema.Literal(1),
  archive: Schema.String,
  compression: Compression,
  imageBytes: Schema.Number,
  blockSize: Schema.optional(Schema.Number),
  archiveBytes: Schema.Number,
  checksum: Checksum,
  source: Schema.optional(RawImageSource)
})

/**
 * The first line of a file-level (tar) manifest (the streamer's volume.ts writes it); its
 * `layout` says which partition and logical volume is which member (absent in manifests
 * written before partitions were laid out: the tree is then at the root).
 */
export const FileManifestHeader = Schema.Struct({
  kind: Schema.Literal("backup-actions/file-manifest"),
  version: Schema.Literal(1),
  archive: Schema.String,
  format: Schema.Literal("tar"),
  compression: Compression,
  entries: Schema.Number,
  fileBytes: Schema.Number,
  archiveBytes: Schema.Number,
  checksum: Checksum,
  layout: Schema.optional(DiskLayout)
})

export const ManifestHeader = Schema.Union(RawImageHeader, FileManifestHeader)
export type ManifestHeader = typeof ManifestHeader.Type

const RawLine = Schema.Struct({
  block: Schema.optional(Schema.Number),
  offset: Schema.Number,
  length: Schema.Number,
  sha256: Schema.String
})

/** One entry of a file-level manifest (the streamer's tree-manifest.ts). */
export const TreeEntry = Schema.Struct({
  path: Schema.String,
  type: Schema.Literal("file", "directory", "symlink", "other"),
  mode: Schema.String,
  uid: Schema.Number,
  gid: Schema.Number,
  size: Schema.Number,
  mtime: Schema.String,
  sha256: Schema.optional(Schema.String),
  target: Schema.optional(Schema.String),
  linkOf: Schema.optional(Schema.String),
  /** Where the entry's first header block is in the uncompressed archive (archives written since it was added). */
  offset: Schema.optional(Schema.Number)
})
export type TreeEntry = typeof TreeEntry.Type

const decodeHeader = Schema.decodeUnknownEither(Schema.parseJson(ManifestHeader))
const decodeRawLine = Schema.decodeUnknownEither(Schema.parseJson(RawLine))
const decodeTreeEntry = Schema.decodeUnknownEither(Schema.parseJson(TreeEntry))

/** A line that is not what the manifest format says; names the line. */
export class ManifestLineError extends Error {
  constructor(readonly lineNumber: number, reason: string) {
    super(`manifest line ${lineNumber}: ${reason}`)
  }
}

/** A header line decoded, or the reason it is not one. */
export const parseHeader = (line: string | undefined): Either.Either<ManifestHeader, string> =>
  line === undefined || line.length === 0
    ? Either.left("the manifest is empty")
    : Either.mapLeft(decodeHeader(line), (error) => `the manifest's header is not one this version reads: ${ParseResult.TreeFormatter.formatErrorSync(error)}`)

/** The ranges of a raw image's manifest, after its header line. Throws ManifestLineError on a bad line. */
export function* rawRanges(lines: Iterable<string>): Generator<RawRange> {
  let number = 0
  for (const line of lines) {
    number += 1
    if (number === 1 || line.length === 0) continue
    const decoded = decodeRawLine(line)
    if (Either.isLeft(decoded)) throw new ManifestLineError(number, ParseResult.TreeFormatter.formatErrorSync(decoded.left))
    yield decoded.right
  }
}

/** The entries of a file-level manifest, after its header line. Throws ManifestLineError on a bad line. */
export function* treeEntries(lines: Iterable<string>): Generator<TreeEntry> {
  let number = 0
  for (const line of lines) {
    number += 1
    if (number === 1 || line.length === 0) continue
    const decoded = decodeTreeEntry(line)
    if (Either.isLeft(decoded)) throw new ManifestLineError(number, ParseResult.TreeFormatter.formatErrorSync(decoded.left))
    yield decoded.right
  }
}


/** Reads a local file's lines one buffer at a time, so that a large manifest never sits in memory whole. */
export function* readLines(path: string): Generator<string> {
  const fd = openSync(path, "r")
  try {
    const buffer = Buffer.alloc(1024 * 1024)
    let pending = ""
    for (let read = readSync(fd, buffer); read > 0; read = readSync(fd, buffer)) {
      const lines = (pending + buffer.toString("utf8", 0, read)).split("\n")
      pending = lines.pop() ?? ""
      yield* lines
    }
    if (pending.length > 0) yield pending
  } finally {
    closeSync(fd)
  }
}
