import { Schema } from "effect"

/**
 * What the deletion of a recovery point left, as a describe afterwards saw it: gone, being
 * deleted, expired (AWS Backup keeps an expired point that it could not delete), or still there.
 */
export const SourceDeletion = Schema.Literal("deleted", "deleting", "expired", "still-there")
export type SourceDeletion = typeof SourceDeletion.Type

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
