import { Schema } from "effect"

/** DynamoDB's own export formats. Parquet is not one of them: that is the exporter's `parquet` mode. */
export const DynamoDbExportFormat = Schema.Literal("DYNAMODB_JSON", "ION")
export type DynamoDbExportFormat = typeof DynamoDbExportFormat.Type

/** The S3 storage classes an AMI's stored image is moved into: the Glacier classes. */
export const AmiStorageClass = Schema.Literal("GLACIER_IR", "GLACIER", "DEEP_ARCHIVE")
export type AmiStorageClass = typeof AmiStorageClass.Type

/** An S3 key prefix without leading or trailing slashes, so keys never get empty path segments. */
const S3Prefix = Schema.String.pipe(
  Schema.pattern(/^[A-Za-z0-9!_.*'()-]+(\/[A-Za-z0-9!_.*'()-]+)*$/, {
    message: () => "an S3 prefix of letters, digits and !_.*'()- separated by single slashes, without a slash at either end"
  })
)

/**
 * What the exporter does with a matching recovery point. The kind of export follows from
 * the recovery point's resource type; `mode` picks between the ways of exporting that kind.
 */
export const ExportAction = Schema.Struct({
  /**
   * native: the service's own export (RDS StartExportTask to Parquet, DynamoDB
   * ExportTableToPointInTime, EC2 CreateStoreImageTask); parquet: a DynamoDB backup restored
   * to a temporary table and written as Parquet by the exporter; direct: an AMI's snapshots
   * archived through the EBS direct APIs.
   */
  mode: Schema.Literal("native", "parquet", "direct"),
  /**
   * Delete the recovery point once its export is verified. Never without verification: the
   * parquet mode verifies a SHA-256 over the bytes written against S3's; an AMI's native
   * (store-image) export verifies its moved copy against the checksum S3 stored for the
   * image. RDS and DynamoDB native exports are the service's own files, which the exporter
   * never reads, so a rule asking this of them fails its exports with that reason.
   */
  deleteSourceAfterVerify: Schema.optionalWith(Schema.Boolean, { default: () => false }),
  /** The bucket exports go to; the artifact bucket when absent. */
  bucket: Schema.optional(Schema.String.pipe(Schema.minLength(3), Schema.maxLength(63))),
  /** Where under the bucket exports go. */
  prefix: Schema.optionalWith(S3Prefix, { default: () => "exports" }),
  /** DynamoDB native mode: the export format. */
  format: Schema.optionalWith(DynamoDbExportFormat, { default: () => "DYNAMODB_JSON" as const }),
  /**
   * The KMS key that encrypts the export: required by RDS StartExportTask; for DynamoDB
   * native mode it becomes the export's SSE-KMS key.
   */
  kmsKeyId: Schema.optional(Schema.NonEmptyString),
  /** RDS native mode: the role that RDS assumes to write to the bucket. */
  iamRoleArn: Schema.optional(Schema.String.pipe(Schema.pattern(/^arn:aws[a-z-]*:iam::\d{12}:role\/.+$/, { message: () => "an IAM role ARN" }))),
  /** RDS native mode: only these databases, schemas or tables (RDS's ExportOnly); everything when absent. */
  tables: Schema.optional(Schema.NonEmptyArray(Schema.NonEmptyString)),
  /** Parquet mode: parallel Scan segments over the temporary table. */
  scanSegments: Schema.optionalWith(Schema.Int.pipe(Schema.between(1, 64)), { default: () => 4 }),
  /** RDS native mode: exports this account may run at once (the AWS quota is 5). */
  maxConcurrentExports: Schema.optionalWith(Schema.Int.pipe(Schema.between(1, 5)), { default: () => 5 }),
  /** AMI native mode: the class the stored image is moved into (S3 Glacier Flexible Retrieval by default). */
  storageClass: Schema.optionalWith(AmiStorageClass, { default: () => "GLACIER" as const }),
  /**
   * AMIs: export only once this many days old. The recovery-point event of a younger AMI is
   * left to the daily sweep, which exports it when it is old enough; 0 exports at once.
   */
  olderThanDays: Schema.optionalWith(Schema.Int.pipe(Schema.between(0, 36_500)), { default: () => 0 }),
  /**
   * AMIs: what the daily sweep takes up among the account's AMIs that the rule matches:
   * only those tagged `backup-actions:managed=true` (the default, so that a broad rule never
   * sweeps golden images), or all of them.
   */
  sweepSelects: Schema.optionalWith(Schema.Literal("managed", "matching"), { default: () => "managed" as const })
}).pipe(
  Schema.filter((action) =>
    action.deleteSourceAfterVerify && action.mode === "direct"
      ? `deleteSourceAfterVerify needs mode "parquet" or "native": a direct export hands its snapshots to the streamer and never deletes the AMI`
      : true
  )
)
export type ExportAction = typeof ExportAction.Type

/**
 * The resource types each export mode can export (the exporter's runExport): native exports
 * of AMIs (store-image), DynamoDB tables and RDS or Aurora snapshots, Parquet of DynamoDB
 * backups, and an AMI's snapshots archived directly.
 */
export const EXPORT_MODE_RESOURCE_TYPES: Readonly<Record<ExportAction["mode"], ReadonlyArray<string>>> = {
  native: ["EC2", "DynamoDB", "RDS", "Aurora"],
  parquet: ["DynamoDB"],
  direct: ["EC2"]
}

/** The resource types whose native export the exporter verifies itself, so that the source may be deleted after it (AMIs). */
export const VERIFIED_NATIVE_EXPORT_RESOURCE_TYPES: ReadonlyArray<string> = ["EC2"]
