import { mkdir, open, rm } from "node:fs/promises"
import { join } from "node:path"
import { DescribeTableCommand, ListBackupsCommand, ScanCommand, type AttributeValue, type TableDescription } from "@aws-sdk/client-dynamodb"
import { Clock, Duration, Effect, Schedule } from "effect"
import { DYNAMODB_PARQUET_MANIFEST_KIND, type DynamoDbParquetManifest, type TableKeyElement } from "@backup-actions/archive"
import { DynamoDb, awsCall } from "@backup-actions/aws"
import { ServiceSettings } from "@backup-actions/config"
import { succeeded, failed, type StepResult } from "@backup-actions/ledger"
import { parseDynamoDbBackupArn, type DynamoDbBackupRef } from "./arns"
import { BackupUnavailable, NotExportable, SpoolFailed, TableNotActive } from "./errors"
import { SchemaStats, planColumns, toWireItem, type KeyAttribute } from "./items"
import { baseDetail, type ExportDetail, type ExportSubject } from "./outcome"
import { checkUploadedContent, sourceContent, type ContentCheck } from "./parquet-content"
import { writeParquet } from "./parquet-file"
import { temporaryTable } from "./temporary-tables"
import { putJson, uploadVerified } from "./upload"

export { CREATED_AT_TAG, MANAGED_TAG, RECOVERY_POINT_TAG, TEMPORARY_TABLE_PREFIX, temporaryTable, temporaryTableName } from "./temporary-tables"

/** Where a DynamoDB backup's Parquet export and its manifest go. */
export const parquetKeys = (prefix: string, backup: DynamoDbBackupRef) => {
  const base = `${prefix}/dynamodb/${backup.table}/${backup.backupId}`
  return { data: `${base}/data.parquet`, manifest: `${base}/manifest.json` }
}

/** Finds the backup among the table's backups, so that a missing one fails with a clear reason. */
const findBackup = (backup: DynamoDbBackupRef) =>
  Effect.gen(function* () {
    const dynamodb = yield* DynamoDb
    let start: string | undefined
    do {
      const page = yield* awsCall("dynamodb:ListBackups", (abortSignal) =>
        dynamodb.send(new ListBackupsCommand({ TableName: backup.table, BackupType: "ALL", ExclusiveStartBackupArn: start }), { abortSignal })
      )
      const found = page.BackupSummaries?.find((summary) => summary.BackupArn === backup.backupArn)
      if (found !== undefined) {
        if (found.BackupStatus !== undefined && found.BackupStatus !== "AVAILABLE") {
          return yield* new BackupUnavailable({ backupArn: backup.backupArn, reason: `is ${found.BackupStatus}, not AVAILABLE` })
        }
        return found
      }
      start = page.LastEvaluatedBackupArn
    } while (start !== undefined)
    return yield* new BackupUnavailable({ backupArn: backup.backupArn, reason: "does not exist" })
  })

const describeTable = (table: string) =>
  Effect.flatMap(DynamoDb, (dynamodb) =>
    awsCall("dynamodb:DescribeTable", (abortSignal) => dynamodb.send(new DescribeTableCommand({ TableName: table }), { abortSignal }))
  ).pipe(Effect.map((result) => result.Table))

/** Waits with a growing, jittered interval: seconds for a small table, up to hours for a large one. */
const waitUntilActive = (table: string) =>
  Effect.gen(function* () {
    const description = yield* describeTable(table)
    const status = description?.TableStatus ?? "UNKNOWN"
    if (status !== "ACTIVE") return yield* new TableNotActive({ table, status })
    return description
  }).pipe(
    Effect.retry({
      schedule: Schedule.exponential(Duration.seconds(2), 1.5).pipe(
        Schedule.modifyDelay((delay) => Duration.min(delay, Duration.minutes(1))),
        Schedule.jittered,
        Schedule.upTo(Duration.hours(12))
      ),
      while: (error) => error._tag === "TableNotActive" && (error.status === "CREATING" || error.status === "UPDATING")
    })
  )

const spoolError = (path: string) => (error: unknown) => new SpoolFailed({ path, reason: error instanceof Error ? error.message : String(error) })

/** One Scan segment, page by page, appended to its own spool file: memory holds one page. */
const scanSegment = (table: string, segment: number, totalSegments: number, file: string) =>
  Effect.gen(function* () {
    const dynamodb = yield* DynamoDb
    const handle = yield* Effect.acquireRelease(
      Effect.tryPromise({ try: () => open(file, "w"), catch: spoolError(file) }),
      (opened) => Effect.promise(() => opened.close())
    )
    const stats = new SchemaStats()
    let start: Record<string, AttributeValue> | undefined
    do {
      const page = yield* awsCall("dynamodb:Scan", (abortSignal) =>
        dynamodb.send(new ScanCommand({ TableName: table, Segment: segment, TotalSegments: totalSegments, ExclusiveStartKey: start }), { abortSignal })
      )
      const lines = (page.Items ?? []).map((item) => {
        const wire = toWireItem(item)
        stats.add(wire)
        return `${JSON.stringify(wire)}\n`
      })
      if (lines.length > 0) yield* Effect.tryPromise({ try: () => handle.write(lines.join("")), catch: spoolError(file) })
      start = page.LastEvaluatedKey
    } while (start !== undefined)
    return stats
  }).pipe(Effect.scoped)

const keyAttributesOf = (table: TableDescription | undefined): ReadonlyArray<KeyAttribute> =>
  (table?.KeySchema ?? []).map((key) => ({
    name: key.AttributeName ?? "",
    type: table?.AttributeDefinitions?.find((definition) => definition.AttributeName === key.AttributeName)?.AttributeType ?? "S"
  }))

/** The table's key schema as the manifest keeps it, for a restore to create the table again. */
const keySchemaOf = (table: TableDescription | undefined): ReadonlyArray<TableKeyElement> =>
  (table?.KeySchema ?? []).map((key) => {
    const type = table?.AttributeDefinitions?.find((definition) => definition.AttributeName === key.AttributeName)?.AttributeType
    return { name: key.AttributeName ?? "", keyType: key.KeyType === "RANGE" ? "RANGE" : "HASH", type: type === "N" || type === "B" ? type : "S" }
  })

/** A scratch directory for one export, removed however the export ends. */
const scratchDirectory = (path: string) =>
  Effect.acquireRelease(
    Effect.tryPromise({ try: () => mkdir(path, { recursive: true }), catch: spoolError(path) }).pipe(Effect.as(path)),
    () => Effect.promise(() => rm(path, { recursive: true, force: true }))
  )

/**
 * Parquet mode: the backup restored to a temporary table, scanned in parallel segments into a
 * local spool, written as one Parquet file, uploaded with a SHA-256 that is compared with
 * what S3 stored, then read back from S3 by an independent Parquet reader whose item count and
 * column checksums must equal those taken from the scanned items. The manifest beside it
 * records both. The source is deleted only when the policy asks and the content was verified.
 */
export const exportDynamoDbAsParquet = (subject: ExportSubject) =>
  Effect.gen(function* () {
    const settings = yield* ServiceSettings
    const backup = parseDynamoDbBackupArn(subject.recoveryPointArn)
    if (backup === undefined) {
      return yield* new NotExportable({
        reason: `recovery point "${subject.recoveryPointArn}" is not a DynamoDB backup ARN (arn:aws:dynamodb:<region>:<account>:table/<table>/backup/<id>)`
      })
    }
    yield* findBackup(backup)
    const table = yield* temporaryTable(backup, subject.recoveryPointArn, subject.attempt)
    const description = yield* waitUntilActive(table.name)
    yield* Effect.logInfo(`restored ${backup.backupArn} to temporary table ${table.name}`)

    const scratch = yield* scratchDirectory(join(settings.workDir, "exports", `${backup.backupId}-${subject.attempt}`))
    const segments = subject.plan.scanSegments
    const spoolFiles = Array.from({ length: segments }, (_, segment) => join(scratch, `segment-${segment}.ndjson`))
    const segmentStats = yield* Effect.forEach(spoolFiles, (file, segment) => scanSegment(table.name, segment, segments, file), { concurrency: segments })
    const stats = new SchemaStats()
    for (const found of segmentStats) stats.merge(found)
    const columns = planColumns(stats, keyAttributesOf(description))

    const [written, source] = yield* Effect.all(
      [
        writeParquet({
          target: join(scratch, "data.parquet"),
          spoolFiles,
          columns,
          metadata: {
            "backup-actions:source": backup.backupArn,
            "backup-actions:table": backup.table,
            "backup-actions:columns": JSON.stringify(columns)
          }
        }),
        sourceContent(spoolFiles, columns)
      ],
      { concurrency: 2 }
    )
    const bucket = subject.plan.bucket ?? settings.artifactBucket
    const keys = parquetKeys(subject.plan.prefix, backup)
    const uploaded = yield* uploadVerified({
      file: written.file,
      bytes: written.bytes,
      sha256: written.sha256,
      bucket,
      key: keys.data,
      contentType: "application/vnd.apache.parquet"
    })
    const check: ContentCheck = uploaded.verified
      ? yield* checkUploadedContent({ bucket, key: keys.data, columns, source })
      : { verification: "none", readBack: undefined, problems: [] }
    const manifest: DynamoDbParquetManifest & { readonly checksum: unknown } = {
      kind: DYNAMODB_PARQUET_MANIFEST_KIND,
      source: { backupArn: backup.backupArn, table: backup.table, tableArn: backup.tableArn, recoveryPointArn: subject.recoveryPointArn },
      data: { bucket, key: keys.data, bytes: written.bytes, rowGroups: written.rowGroups },
      itemCount: written.rows,
      columns,
      key: keySchemaOf(description),
      content: source,
      ...(check.readBack === undefined ? {} : { readBack: check.readBack }),
      checksum: { algorithm: "SHA256", type: uploaded.checksumType, value: uploaded.checksum, fullObjectSha256: written.sha256 },
      verified: check.verification
    }
    yield* putJson(bucket, keys.manifest, manifest)

    const contentVerified = check.verification === "content"
    const reason = !uploaded.verified
      ? `stored checksum ${uploaded.stored ?? "none"} differs from computed ${uploaded.checksum}`
      : `the Parquet file read back differs from its source: ${check.problems.slice(0, 5).join("; ")}${check.problems.length > 5 ? ` (and ${check.problems.length - 5} more)` : ""}`
    if (!contentVerified) yield* Effect.logError(`export of ${backup.backupArn} not verified to its content: ${reason}; the source is kept`)
    const now = yield* Clock.currentTimeMillis
    const detail: ExportDetail = {
      ...baseDetail(subject, "dynamodb"),
      status: contentVerified ? "exported" : "failed",
      location: { bucket, key: keys.data },
      manifest: { bucket, key: keys.manifest },
      format: "parquet",
      itemCount: written.rows,
      bytesStored: written.bytes,
      checksum: { algorithm: "SHA256", type: uploaded.checksumType, value: uploaded.checksum },
      verified: contentVerified,
      verification: check.verification,
      sourceDeleted: false,
      durationMs: now - subject.startedAt
    }
    const result: StepResult<ExportDetail> = contentVerified ? succeeded(detail) : failed(reason, { ...detail, reason })
    return result
  }).pipe(Effect.scoped)
