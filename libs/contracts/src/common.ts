import { Schema } from "effect"

/**
 * What the deletion of a recovery point left, as a describe afterwards saw it: gone, being
 * deleted, expired (AWS Backup keeps an expired point that it could not delete), or still there.
 */
export const SourceDeletion = Schema.Literal("deleted", "deleting", "expired", "still-there")
export type SourceDeletion = typeof SourceDeletion.Type

/**
 * How far an artifact was verified. "content": it was read back from S3, decompressed, and
 * matched checksums taken from its source (EBS's per-block checksums, each file's SHA-256,
 * the dump's SHA-256); only this allows deleting a source. "upload": S3's checksums show it
 * holds the bytes that were sent, and nothing more was shown. "none": not even that held.
 * Events written before content verification carry a boolean, read as "upload" or "none".
 */
export const Verification = Schema.Union(
  Schema.Literal("content", "upload", "none"),
  Schema.transform(Schema.Boolean, Schema.Literal("upload", "none"), {
    strict: true,
    decode: (verified) => (verified ? ("upload" as const) : ("none" as const)),
    encode: (verification) => verification === "upload"
  })
)
export type Verification = typeof Verification.Type

/** The states in which a source counts as deleted: gone, or on its way out. */
export const isSourceGone = (state: SourceDeletion): boolean => state === "deleted" || state === "deleting"

export const S3Location = Schema.Struct({ bucket: Schema.String, key: Schema.String })
export type S3Location = typeof S3Location.Type

/** direct and volume archive EBS snapshots; dump runs a database engine's own dump tool against a restored DB instance. */
export const ArchiveMode = Schema.Literal("direct", "volume", "dump")
export type ArchiveMode = typeof ArchiveMode.Type
export const Compression = Schema.Literal("zstd", "gzip")
export type Compression = typeof Compression.Type

/** What the policy asked for, carried along so that every service acts on the same decision. */
export const ArchivePlan = Schema.Struct({
  rule: Schema.String,
  mode: ArchiveMode,
  compression: Compression,
  deleteSourceAfterVerify: Schema.Boolean,
  /** Dump mode: the class of the temporary DB instance (the restorer's default when absent). */
  instanceClass: Schema.optional(Schema.String)
})
export type ArchivePlan = typeof ArchivePlan.Type
