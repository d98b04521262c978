import { createHash } from "node:crypto"
import { DescribeKeyCommand } from "@aws-sdk/client-kms"
import { DescribeExportTasksCommand, StartExportTaskCommand, type ExportTask } from "@aws-sdk/client-rds"
import { Clock, Duration, Effect, Schedule, Schema } from "effect"
import { Kms, Rds, awsCall } from "@backup-actions/aws"
import { ServiceSettings } from "@backup-actions/config"
import { succeeded, type StepResult } from "@backup-actions/ledger"
import { parseRdsSnapshotArn } from "./arns"
import { ExportStillRunning, NativeExportFailed, NotExportable } from "./errors"
import { exportMonitorSchedule } from "./dynamodb-native"
import { baseDetail, type ExportDetail, type ExportKind, type ExportSubject } from "./outcome"

/** RDS export task identifiers: 1 to 60 letters, digits and hyphens, a letter first, no double or trailing hyphen. */
export const MAX_EXPORT_ID_LENGTH = 60

/**
 * The export task identifier: readable (the snapshot's name), unique per recovery point (a
 * hash of its ARN) and per ledger attempt, so that re-running after a failure never collides
 * with the failed task, which RDS keeps.
 */
export const exportTaskIdentifier = (snapshotName: string, recoveryPointArn: string, attempt: number): string => {
  const suffix = `-${exportIdStem(recoveryPointArn)}-a${attempt}`
  const readable = `ba-${snapshotName.toLowerCase().replace(/[^a-z0-9]+/g, "-")}`
    .slice(0, MAX_EXPORT_ID_LENGTH - suffix.length)
    .replace(/-+$/, "")
  return `${readable}${suffix}`
}

/** The part of the identifier that every attempt for one recovery point shares. */
const exportIdStem = (recoveryPointArn: string): string => createHash("sha256").update(recoveryPointArn).digest("hex").slice(0, 10)

const RUNNING = new Set(["STARTING", "IN_PROGRESS"])
const statusOf = (task: ExportTask): string => (task.Status ?? "UNKNOWN").toUpperCase()

/** Every export task of the account and region, page by page. */
const listExportTasks = (sourceArn?: string) =>
  Effect.gen(function* () {
    const rds = yield* Rds
    const tasks: Array<ExportTask> = []
    let marker: string | undefined
    do {
      const page = yield* awsCall("rds:DescribeExportTasks", (abortSignal) =>
        rds.send(new DescribeExportTasksCommand({ ...(sourceArn === undefined ? {} : { SourceArn: sourceArn }), Marker: marker }), { abortSignal })
      )
      tasks.push(...(page.ExportTasks ?? []))
      marker = page.Marker
    } while (marker !== undefined)
    return tasks
  })

class NoExportSlot extends Schema.TaggedError<NoExportSlot>()("NoExportSlot", { running: Schema.Number }) {}

/**
 * The wait for a free export slot: starts at half a minute and grows to five, jittered so
 * that waiting workers do not all ask at once. The message's visibility is extended
 * meanwhile, so the event is neither lost nor delivered twice.
 */
export const quotaWaitSchedule = Schedule.exponential(Duration.seconds(30), 1.5).pipe(
  Schedule.modifyDelay((delay) => Duration.min(delay, Duration.minutes(5))),
  Schedule.jittered,
  Schedule.upTo(Duration.hours(24))
)

/** Returns once fewer than `limit` export tasks are running in the account (AWS allows 5). */
export const waitForExportSlot = (limit: number) =>
  Effect.gen(function* () {
    const running = (yield* listExportTasks()).filter((task) => RUNNING.has(statusOf(task))).length
    if (running >= limit) {
      yield* Effect.logInfo(`${running} snapshot exports running (limit ${limit}); waiting for a slot`)
      return yield* new NoExportSlot({ running })
    }
  }).pipe(
    Effect.retry({ schedule: quotaWaitSchedule, while: (error) => error._tag === "NoExportSlot" }),
    Effect.catchTag("NoExportSlot", (error) => new NotExportable({ reason: `no snapshot export slot came free within a day (${error.running} running)` }))
  )

/** Waits until the task is COMPLETE; FAILED or CANCELED end as NativeExportFailed with RDS's FailureCause. */
export const awaitExportTask = (identifier: string) =>
  Effect.gen(function* () {
    const rds = yield* Rds
    const page = yield* awsCall("rds:DescribeExportTasks", (abortSignal) =>
      rds.send(new DescribeExportTasksCommand({ ExportTaskIdentifier: identifier }), { abortSignal })
    )
    const task = page.ExportTasks?.[0]
    const status = task === undefined ? "MISSING" : statusOf(task)
    if (task !== undefined && RUNNING.has(status)) return yield* new ExportStillRunning({ exportId: identifier, status })
    if (task === undefined || status !== "COMPLETE") {
      return yield* new NativeExportFailed({ exportId: identifier, status, cause: task?.FailureCause ?? "no failure cause given" })
    }
    return task
  }).pipe(Effect.retry({ schedule: exportMonitorSchedule, while: (error) => error._tag === "ExportStillRunning" }))

/** The KMS key must exist and be enabled; RDS would otherwise fail the task only after starting it. */
const checkKey = (keyId: string) =>
  Effect.gen(function* () {
    const kms = yield* Kms
    const described = yield* awsCall("kms:DescribeKey", (abortSignal) => kms.send(new DescribeKeyCommand({ KeyId: keyId }), { abortSignal })).pipe(
      Effect.catchIf(
        (error) => error.kind === "not-found",
        () => new NotExportable({ reason: `KMS key ${keyId} does not exist` })
      )
    )
    const state = described.KeyMetadata?.KeyState ?? "Unknown"
    if (state !== "Enabled") return yield* new NotExportable({ reason: `KMS key ${keyId} is ${state}, not Enabled` })
  })

/**
 * RDS/Aurora native mode: StartExportTask of the DB or cluster snapshot to S3 as Parquet with
 * the policy's KMS key and IAM role (and table selection), at most `maxConcurrentExports` at
 * once, then monitored until it completes.
 */
export const exportRdsSnapshot = (subject: ExportSubject, kind: ExportKind) =>
  Effect.gen(function* () {
    const settings = yield* ServiceSettings
    const rds = yield* Rds
    const snapshot = parseRdsSnapshotArn(subject.recoveryPointArn)
    if (snapshot === undefined) {
      return yield* new NotExportable({ reason: `recovery point "${subject.recoveryPointArn}" is not an RDS snapshot or cluster snapshot ARN` })
    }
    const { kmsKeyId, iamRoleArn } = subject.plan
    if (kmsKeyId === undefined || iamRoleArn === undefined) {
      return yield* new NotExportable({ reason: `rule "${subject.plan.rule}" needs kmsKeyId and iamRoleArn for an RDS snapshot export` })
    }
    yield* checkKey(kmsKeyId)
    const bucket = subject.plan.bucket ?? settings.artifactBucket
    const s3Prefix = `${subject.plan.prefix}/${kind}`
    const stem = exportIdStem(subject.recoveryPointArn)
    // A task an earlier attempt started and that did not fail is carried on, not started again.
    const earlier = (yield* listExportTasks(snapshot.snapshotArn)).find(
      (task) => task.SourceArn === snapshot.snapshotArn && (task.ExportTaskIdentifier ?? "").includes(`-${stem}-a`) && (RUNNING.has(statusOf(task)) || statusOf(task) === "COMPLETE")
    )
    let identifier: string
    if (earlier?.ExportTaskIdentifier !== undefined) {
      identifier = earlier.ExportTaskIdentifier
      yield* Effect.logInfo(`resuming export task ${identifier} that an earlier attempt started`)
    } else {
      identifier = exportTaskIdentifier(snapshot.snapshotName, subject.recoveryPointArn, subject.attempt)
      yield* waitForExportSlot(subject.plan.maxConcurrentExports)
      yield* awsCall("rds:StartExportTask", (abortSignal) =>
        rds.send(
          new StartExportTaskCommand({
            ExportTaskIdentifier: identifier,
            SourceArn: snapshot.snapshotArn,
            S3BucketName: bucket,
            S3Prefix: s3Prefix,
            IamRoleArn: iamRoleArn,
            KmsKeyId: kmsKeyId,
            ...(subject.plan.tables === undefined ? {} : { ExportOnly: [...subject.plan.tables] })
          }),
          { abortSignal }
        )
      )
      yield* Effect.logInfo(`started export task ${identifier} of ${snapshot.snapshotArn}`)
    }
    const task = yield* awaitExportTask(identifier)
    const now = yield* Clock.currentTimeMillis
    const gigabytes = task.TotalExtractedDataInGB
    const detail: ExportDetail = {
      ...baseDetail(subject, kind),
      status: "exported",
      // RDS writes the export under <prefix>/<export-task-id>/.
      location: { bucket, key: `${s3Prefix}/${identifier}/` },
      format: "parquet",
      exportId: identifier,
      ...(gigabytes === undefined ? {} : { bytesStored: gigabytes * 1024 ** 3 }),
      ...(task.WarningMessage === undefined ? {} : { warning: task.WarningMessage }),
      // RDS wrote these files; nothing here read them back, so the source always stays.
      verified: false,
      sourceDeleted: false,
      durationMs: now - subject.startedAt
    }
    const result: StepResult<ExportDetail> = succeeded(detail)
    return result
  })
