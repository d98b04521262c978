import { Schema } from "effect"
import { defineContract, OWNED_SOURCE, OwnedDetailFields } from "./contract"

const S3Location = Schema.Struct({ bucket: Schema.String, key: Schema.String })
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

/** The restorer made (or failed to make) a live copy of a recovery point. */
export const RestoreCompleted = defineContract({
  source: OWNED_SOURCE,
  detailType: "Restore Completed",
  versioned: true,
  detail: Schema.Struct({
    ...OwnedDetailFields,
    status: Schema.Literal("restored", "failed"),
    resourceType: Schema.String,
    backupVaultName: Schema.String,
    snapshotId: Schema.String,
    plan: ArchivePlan,
    volumeId: Schema.optional(Schema.String),
    availabilityZone: Schema.optional(Schema.String),
    reason: Schema.optional(Schema.String)
  })
})

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

/** The exporter ran a native export (RDS/Aurora Parquet, DynamoDB, AMI to S3). */
export const ExportCompleted = defineContract({
  source: OWNED_SOURCE,
  detailType: "Export Completed",
  versioned: true,
  detail: Schema.Struct({
    ...OwnedDetailFields,
    status: Schema.Literal("exported", "failed"),
    kind: Schema.Literal("rds", "aurora", "dynamodb", "ami"),
    location: Schema.optional(S3Location),
    format: Schema.optional(Schema.String),
    bytesStored: Schema.optional(Schema.Number),
    sourceDeleted: Schema.Boolean,
    reason: Schema.optional(Schema.String)
  })
})

/** The sharer made (or failed to make) a DR copy in another account and/or region. */
export const ReplicaCompleted = defineContract({
  source: OWNED_SOURCE,
  detailType: "Replica Completed",
  versioned: true,
  detail: Schema.Struct({
    ...OwnedDetailFields,
    status: Schema.Literal("replicated", "failed"),
    sourceArn: Schema.String,
    replicaArn: Schema.optional(Schema.String),
    account: Schema.optional(Schema.String),
    region: Schema.optional(Schema.String),
    kmsKeyId: Schema.optional(Schema.String),
    replicaAgeSeconds: Schema.optional(Schema.Number),
    reason: Schema.optional(Schema.String)
  })
})

/** The reporter wrote a report. */
export const ReportPublished = defineContract({
  source: OWNED_SOURCE,
  detailType: "Report Published",
  versioned: true,
  detail: Schema.Struct({
    ...OwnedDetailFields,
    period: Schema.Literal("run", "day"),
    json: S3Location,
    csv: Schema.optional(S3Location),
    html: Schema.optional(S3Location),
    failures: Schema.Number,
    total: Schema.Number
  })
})
