import { Schema } from "effect"

/** DynamoDB's own export formats. Parquet is not one of them: that is the exporter's `parquet` mode. */
export const DynamoDbExportFormat = Schema.Literal("DYNAMODB_JSON", "ION")
export type DynamoDbExportFormat = typeof DynamoDbExportFormat.Type

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
   * Delete the recovery point once its export is verified. Never without verification, and
   * only the parquet mode verifies (a SHA-256 over the bytes written, compared with S3's):
   * a native export is the service's own files, which the exporter never reads.
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
  maxConcurrentExports: Schema.optionalWith(Schema.Int.pipe(Schema.between(1, 5)), { default: () => 5 })
}).pipe(
  Schema.filter((action) =>
    action.deleteSourceAfterVerify && action.mode !== "parquet"
      ? `deleteSourceAfterVerify needs mode "parquet": a ${action.mode} export is never verified by the exporter`
      : true
  )
)
export type ExportAction = typeof ExportAction.Type
