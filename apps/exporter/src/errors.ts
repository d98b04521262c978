import { Schema } from "effect"
import type { AwsError } from "@backup-actions/aws"
import type { ParquetWriteFailed } from "./parquet-file"

/** The recovery point cannot be exported as the policy asks (wrong ARN shape, missing setting, ...). */
export class NotExportable extends Schema.TaggedError<NotExportable>()("NotExportable", {
  reason: Schema.String
}) {}

/** The DynamoDB backup behind the recovery point does not exist or is not usable. */
export class BackupUnavailable extends Schema.TaggedError<BackupUnavailable>()("BackupUnavailable", {
  backupArn: Schema.String,
  reason: Schema.String
}) {}

/** The temporary table did not become ACTIVE. */
export class TableNotActive extends Schema.TaggedError<TableNotActive>()("TableNotActive", {
  table: Schema.String,
  status: Schema.String
}) {}

/** Writing or reading the local spool of scanned items failed. */
export class SpoolFailed extends Schema.TaggedError<SpoolFailed>()("SpoolFailed", {
  path: Schema.String,
  reason: Schema.String
}) {}

/** The service's own export ended without success (RDS FAILED/CANCELED, DynamoDB FAILED). */
export class NativeExportFailed extends Schema.TaggedError<NativeExportFailed>()("NativeExportFailed", {
  exportId: Schema.String,
  status: Schema.String,
  cause: Schema.String
}) {}

/** The export is still running; monitoring polls again later. */
export class ExportStillRunning extends Schema.TaggedError<ExportStillRunning>()("ExportStillRunning", {
  exportId: Schema.String,
  status: Schema.String
}) {}

/** The AMI behind an EC2 recovery point does not exist or cannot be exported (not available, no snapshots). */
export class ImageUnavailable extends Schema.TaggedError<ImageUnavailable>()("ImageUnavailable", {
  imageId: Schema.String,
  reason: Schema.String
}) {}

/** S3 refused to store the moved image in the policy's storage class. */
export class StorageClassRefused extends Schema.TaggedError<StorageClassRefused>()("StorageClassRefused", {
  storageClass: Schema.String,
  key: Schema.String,
  reason: Schema.String
}) {}

/** Everything an export attempt can fail with, short of losing its claim on the step. */
export type ExportFailure =
  | AwsError
  | NotExportable
  | BackupUnavailable
  | TableNotActive
  | SpoolFailed
  | ParquetWriteFailed
  | NativeExportFailed
  | ExportStillRunning
  | ImageUnavailable
  | StorageClassRefused

/** The one-line reason kept in the ledger and sent in Export Completed. */
export const describeExportFailure = (error: ExportFailure): string => {
  switch (error._tag) {
    case "AwsError":
      return `${error.operation} failed: ${error.code}: ${error.message}`
    case "NotExportable":
      return error.reason
    case "BackupUnavailable":
      return `backup ${error.backupArn}: ${error.reason}`
    case "TableNotActive":
      return `temporary table ${error.table} ended in status ${error.status}`
    case "SpoolFailed":
      return `local spool ${error.path}: ${error.reason}`
    case "ParquetWriteFailed":
      return `writing Parquet ${error.file}: ${error.reason}`
    case "NativeExportFailed":
      return `export ${error.exportId} ended ${error.status}: ${error.cause}`
    case "ExportStillRunning":
      return `export ${error.exportId} still ${error.status} after a day of waiting`
    case "ImageUnavailable":
      return `AMI ${error.imageId}: ${error.reason}`
    case "StorageClassRefused":
      return `S3 refused storage class ${error.storageClass} for ${error.key}: ${error.reason}`
  }
}
