import { createHash } from "node:crypto"
import { DescribeExportCommand, ExportTableToPointInTimeCommand, ListExportsCommand, type ExportDescription } from "@aws-sdk/client-dynamodb"
import { Clock, Duration, Effect, Schedule } from "effect"
import { DynamoDb, awsCall } from "@backup-actions/aws"
import { ServiceSettings } from "@backup-actions/config"
import { succeeded, type StepResult } from "@backup-actions/ledger"
import { parseDynamoDbBackupArn, type DynamoDbBackupRef } from "./arns"
import { ExportStillRunning, NativeExportFailed, NotExportable } from "./errors"
import { baseDetail, type ExportDetail, type ExportSubject } from "./outcome"

/** Where DynamoDB writes a native export of one recovery point (it adds AWSDynamoDB/<export-id>/). */
export const nativePrefix = (prefix: string, backup: DynamoDbBackupRef): string => `${prefix}/dynamodb/${backup.table}/${backup.backupId}/native`

/**
 * The export's ClientToken: the same recovery point and attempt always send the same token,
 * so a retried call returns the export already started instead of starting a second one.
 */
export const clientTokenFor = (recoveryPointArn: string, attempt: number): string =>
  createHash("sha256").update(`${recoveryPointArn}#export:native#${attempt}`).digest("hex").slice(0, 36)

/** Polls with a growing, jittered interval, up to a day: exports of large tables take hours. */
export const exportMonitorSchedule = Schedule.exponential(Duration.seconds(10), 1.5).pipe(
  Schedule.modifyDelay((delay) => Duration.min(delay, Duration.minutes(5))),
  Schedule.jittered,
  Schedule.upTo(Duration.hours(24))
)

const describeExport = (exportArn: string) =>
  Effect.flatMap(DynamoDb, (dynamodb) =>
    awsCall("dynamodb:DescribeExport", (abortSignal) => dynamodb.send(new DescribeExportCommand({ ExportArn: exportArn }), { abortSignal }))
  ).pipe(Effect.map((result) => result.ExportDescription))

/** Waits until the export leaves IN_PROGRESS; FAILED ends as NativeExportFailed with DynamoDB's code and message. */
export const awaitDynamoDbExport = (exportArn: string) =>
  Effect.gen(function* () {
    const description = yield* describeExport(exportArn)
    const status = description?.ExportStatus ?? "UNKNOWN"
    if (status === "IN_PROGRESS") return yield* new ExportStillRunning({ exportId: exportArn, status })
    if (status !== "COMPLETED") {
      return yield* new NativeExportFailed({
        exportId: exportArn,
        status,
        cause: `${description?.FailureCode ?? "no failure code"}: ${description?.FailureMessage ?? "no failure message"}`
      })
    }
    return description
  }).pipe(Effect.retry({ schedule: exportMonitorSchedule, while: (error) => error._tag === "ExportStillRunning" }))

/** An export of this recovery point that an earlier attempt started and that is running or done. */
const earlierExport = (tableArn: string, bucket: string, prefix: string) =>
  Effect.gen(function* () {
    const dynamodb = yield* DynamoDb
    let next: string | undefined
    do {
      const page = yield* awsCall("dynamodb:ListExports", (abortSignal) =>
        dynamodb.send(new ListExportsCommand({ TableArn: tableArn, NextToken: next }), { abortSignal })
      )
      for (const summary of page.ExportSummaries ?? []) {
        if (summary.ExportArn === undefined || summary.ExportStatus === "FAILED") continue
        const description = yield* describeExport(summary.ExportArn)
        if (description?.S3Bucket === bucket && description.S3Prefix === prefix) return description
      }
      next = page.NextToken
    } while (next !== undefined)
    return undefined
  })

/**
 * Native mode: DynamoDB's ExportTableToPointInTime (DYNAMODB_JSON or ION, never Parquet) of
 * the source table at the recovery point's time, into the export bucket; then monitored
 * until it completes. Needs point-in-time recovery on the source table.
 */
export const exportDynamoDbNative = (subject: ExportSubject) =>
  Effect.gen(function* () {
    const settings = yield* ServiceSettings
    const dynamodb = yield* DynamoDb
    const backup = parseDynamoDbBackupArn(subject.recoveryPointArn)
    if (backup === undefined) {
      return yield* new NotExportable({ reason: `recovery point "${subject.recoveryPointArn}" is not a DynamoDB backup ARN` })
    }
    const exportTime = subject.creationDate === undefined ? Number.NaN : Date.parse(subject.creationDate)
    if (!Number.isFinite(exportTime)) {
      return yield* new NotExportable({ reason: `the event for ${subject.recoveryPointArn} has no valid creationDate to export the table at` })
    }
    const bucket = subject.plan.bucket ?? settings.artifactBucket
    const prefix = nativePrefix(subject.plan.prefix, backup)
    const adopted = yield* earlierExport(backup.tableArn, bucket, prefix)
    let exportArn: string
    if (adopted?.ExportArn !== undefined) {
      exportArn = adopted.ExportArn
      yield* Effect.logInfo(`resuming export ${exportArn} that an earlier attempt started`)
    } else {
      const started = yield* awsCall("dynamodb:ExportTableToPointInTime", (abortSignal) =>
        dynamodb.send(
          new ExportTableToPointInTimeCommand({
            TableArn: backup.tableArn,
            ExportTime: new Date(exportTime),
            ClientToken: clientTokenFor(subject.recoveryPointArn, subject.attempt),
            S3Bucket: bucket,
            S3Prefix: prefix,
            ExportFormat: subject.plan.format,
            ExportType: "FULL_EXPORT",
            ...(subject.plan.kmsKeyId === undefined ? {} : { S3SseAlgorithm: "KMS" as const, S3SseKmsKeyId: subject.plan.kmsKeyId })
          }),
          { abortSignal }
        )
      )
      exportArn = started.ExportDescription?.ExportArn ?? ""
    }
    const done: ExportDescription | undefined = yield* awaitDynamoDbExport(exportArn)
    const now = yield* Clock.currentTimeMillis
    const detail: ExportDetail = {
      ...baseDetail(subject, "dynamodb"),
      status: "exported",
      location: { bucket, key: `${prefix}/` },
      ...(done?.ExportManifest === undefined ? {} : { manifest: { bucket, key: done.ExportManifest } }),
      format: done?.ExportFormat ?? subject.plan.format,
      exportId: exportArn,
      ...(done?.ItemCount === undefined ? {} : { itemCount: done.ItemCount }),
      ...(done?.BilledSizeBytes === undefined ? {} : { bytesStored: done.BilledSizeBytes }),
      // DynamoDB wrote these files; nothing here read them back, so the source always stays.
      verified: false,
      sourceDeleted: false,
      durationMs: now - subject.startedAt
    }
    const result: StepResult<ExportDetail> = succeeded(detail)
    return result
  })
