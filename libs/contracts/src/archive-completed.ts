import { Schema } from "effect"
import { defineContract, OWNED_SOURCE, OwnedDetailFields } from "./contract"
import { ArchiveMode, Compression, S3Location } from "./common"

const Checksum = Schema.Struct({
  algorithm: Schema.Literal("SHA256"),
  /** COMPOSITE: SHA-256 over the parts' SHA-256s, suffixed with the part count, as S3 stores it. */
  type: Schema.Literal("COMPOSITE", "FULL_OBJECT"),
  value: Schema.String
})

/** The streamer wrote (or failed to write) an archive. */
export const ArchiveCompleted = defineContract({
  source: OWNED_SOURCE,
  detailType: "Archive Completed",
  versioned: true,
  detail: Schema.Struct({
    ...OwnedDetailFields,
    status: Schema.Literal("archived", "failed"),
    snapshotId: Schema.String,
    mode: ArchiveMode,
    /** tar for a file-level archive, raw for a disk image. */
    format: Schema.optional(Schema.Literal("tar", "raw")),
    compression: Compression,
    location: Schema.optional(S3Location),
    manifest: Schema.optional(S3Location),
    bytesRead: Schema.Number,
    bytesStored: Schema.Number,
    durationMs: Schema.Number,
    checksum: Schema.optional(Checksum),
    verified: Schema.Boolean,
    sourceDeleted: Schema.Boolean,
    /** Set when a worker resumed an earlier worker's upload: the parts it found done. */
    resumedAfterPart: Schema.optional(Schema.Number),
    /** The volume the restorer made for volume mode, so that it can delete it. */
    restoredVolumeId: Schema.optional(Schema.String),
    reason: Schema.optional(Schema.String)
  })
})
