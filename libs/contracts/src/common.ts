import { Schema } from "effect"

export const S3Location = Schema.Struct({ bucket: Schema.String, key: Schema.String })
export type S3Location = typeof S3Location.Type

export const ArchiveMode = Schema.Literal("direct", "volume")
export type ArchiveMode = typeof ArchiveMode.Type
export const Compression = Schema.Literal("zstd", "gzip")
export type Compression = typeof Compression.Type

/** What the policy asked for, carried along so that every service acts on the same decision. */
export const ArchivePlan = Schema.Struct({
  rule: Schema.String,
  mode: ArchiveMode,
  compression: Compression,
  deleteSourceAfterVerify: Schema.Boolean
})
export type ArchivePlan = typeof ArchivePlan.Type
