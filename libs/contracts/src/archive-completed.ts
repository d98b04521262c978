import { Schema } from "effect"
import { defineContract, OWNED_SOURCE, OwnedDetailFields } from "./contract"
import { ArchiveMode, Compression, S3Location, SourceDeletion, Verification } from "./common"

const Checksum = Schema.Struct({
  algorithm: Schema.Literal("SHA256"),
  /** COMPOSITE: SHA-256 over the parts' SHA-256s, suffixed with the part count, as S3 stores it. */
  type: Schema.Literal("COMPOSITE", "FULL_OBJECT"),
  value: Schema.String
})

/** Dump mode: one database's archive. */
const DatabaseArchive = Schema.Struct({
  database: Schema.String,
  location: S3Location,
  /** Bytes of SQL the dump tool wrote. */
  bytesRead: Schema.Number,
  bytesStored: Schema.Number,
  checksum: Checksum,
  verified: Verification
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
    /** The protected resource the recovery point is a backup of, as AWS Backup named it; absent in events from earlier builds. */
    resourceArn: Schema.optional(Schema.String),
    /** tar for a file-level archive, raw for a disk image, sql for an engine-native dump. */
    format: Schema.optional(Schema.Literal("tar", "raw", "sql")),
    compression: Compression,
    location: Schema.optional(S3Location),
    manifest: Schema.optional(S3Location),
    bytesRead: Schema.Number,
    bytesStored: Schema.Number,
    durationMs: Schema.Number,
    checksum: Schema.optional(Checksum),
    /** Only "content" allows deleting the source. */
    verified: Verification,
    sourceDeleted: Schema.Boolean,
    /** When the policy asked to delete the source: what the deletion left, as a describe saw it. */
    sourceDeletion: Schema.optional(SourceDeletion),
    /** Set when a worker resumed an earlier worker's upload: the parts it found done. */
    resumedAfterPart: Schema.optional(Schema.Number),
    /** The volume the restorer made for volume mode, so that it can delete it. */
    restoredVolumeId: Schema.optional(Schema.String),
    /** The DB instance the restorer made for dump mode, so that it can delete it. */
    restoredInstanceId: Schema.optional(Schema.String),
    /** Dump mode: one archive per database (location then names the common prefix). */
    databases: Schema.optional(Schema.Array(DatabaseArchive)),
    reason: Schema.optional(Schema.String)
  })
})
