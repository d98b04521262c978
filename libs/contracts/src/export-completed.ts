import { Schema } from "effect"
import { defineContract, OWNED_SOURCE, OwnedDetailFields } from "./contract"
import { S3Location, SourceDeletion, Verification } from "./common"

/** A checksum the exporter computed over the bytes it wrote, as S3 stores it for the object. */
const ExportChecksum = Schema.Struct({
  algorithm: Schema.Literal("SHA256"),
  /** FULL_OBJECT for a single upload; COMPOSITE (over the parts' SHA-256s, "-<parts>") for a multipart one. */
  type: Schema.Literal("COMPOSITE", "FULL_OBJECT"),
  value: Schema.String
})

/** A checksum S3 computed and stored for an object, compared between an AMI's stored image and its moved copy. */
const StoredChecksum = Schema.Struct({
  algorithm: Schema.Literal("CRC64NVME", "CRC32", "CRC32C", "SHA1", "SHA256"),
  value: Schema.String
})

/** One EBS snapshot behind an AMI exported in direct mode, and where the streamer archives it. */
const AmiSnapshotArchive = Schema.Struct({
  snapshotId: Schema.String,
  deviceName: Schema.optional(Schema.String),
  archive: S3Location
})

/** The exporter ran a native export (RDS/Aurora Parquet, DynamoDB, AMI to S3) or wrote Parquet itself. */
export const ExportCompleted = defineContract({
  source: OWNED_SOURCE,
  detailType: "Export Completed",
  versioned: true,
  detail: Schema.Struct({
    ...OwnedDetailFields,
    status: Schema.Literal("exported", "failed"),
    kind: Schema.Literal("rds", "aurora", "dynamodb", "ami"),
    /** The protected resource the recovery point is a backup of, as AWS Backup named it; absent in events from earlier builds. */
    resourceArn: Schema.optional(Schema.String),
    /** The object (parquet mode) or the prefix under which the service wrote its files (native mode). */
    location: Schema.optional(S3Location),
    /** parquet, or the service's own format: DYNAMODB_JSON, ION (DynamoDB), parquet (RDS). */
    format: Schema.optional(Schema.String),
    bytesStored: Schema.optional(Schema.Number),
    sourceDeleted: Schema.Boolean,
    /** When the policy asked to delete the source: what the deletion left, as a describe saw it. */
    sourceDeletion: Schema.optional(SourceDeletion),
    reason: Schema.optional(Schema.String),
    /** How the export ran: the service's own export, or the exporter's Parquet writer. */
    mode: Schema.optional(Schema.Literal("native", "parquet", "direct")),
    itemCount: Schema.optional(Schema.Number),
    /** The manifest beside the data: ours in parquet mode, the service's in native mode. */
    manifest: Schema.optional(S3Location),
    checksum: Schema.optional(ExportChecksum),
    /**
     * The export was verified enough to let its source go: the stored object's checksum equals
     * the one computed over the bytes written and, in parquet mode, the file read back holds the
     * source's items (see `verification`).
     */
    verified: Schema.optional(Schema.Boolean),
    /**
     * Parquet mode: "content" when the file read back from S3 by an independent reader has the
     * source's item count and column checksums, "upload" when only S3's checksum held, "none"
     * when not even that. Absent from events written before content verification.
     */
    verification: Schema.optional(Verification),
    /** The RDS export task identifier or the DynamoDB export ARN. */
    exportId: Schema.optional(Schema.String),
    /** RDS tables that the export skipped, and the service's warning about them. */
    skippedTables: Schema.optional(Schema.Array(Schema.String)),
    warning: Schema.optional(Schema.String),
    /** AMIs: the image exported. */
    imageId: Schema.optional(Schema.String),
    /** AMI native mode: the S3 storage class the stored image was moved into. */
    storageClass: Schema.optional(Schema.String),
    /** AMI native mode: the checksum that the source object and its moved copy share. */
    storedChecksum: Schema.optional(StoredChecksum),
    /**
     * AMI direct mode: the image's snapshots, for the streamer to archive through the EBS
     * direct APIs at these keys; `location` is the image's metadata for registering it again.
     */
    snapshots: Schema.optional(Schema.Array(AmiSnapshotArchive)),
    durationMs: Schema.optional(Schema.Number)
  })
})
