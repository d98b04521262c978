import { Schema } from "effect"

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
