import { SendMessageCommand } from "@aws-sdk/client-sqs"
import { Clock, Config, Context, Effect, Layer, Option } from "effect"
import { AwsConfig, DynamoDb, EventBridge, S3, Sns, Sqs, awsCall } from "@backup-actions/aws"
import { ROUTES, ServiceSettings } from "@backup-actions/config"
import { Publisher } from "@backup-actions/consumer"
import { DrillBook, type DrillRecord } from "@backup-actions/ledger"
import { OutcomeBook } from "./book"
import { DigestDue, ReportDue, ReportPublished, commandBody, subscribe, subscribeTo, subscriptionSet } from "@backup-actions/contracts"
import { Notifier } from "./notifier"
import {
  dayOf,
  daysBetween,
  entryOf,
  formatBytes,
  jobEntryOf,
  jobLines,
  summarize,
  type AwsBackupJobEntry,
  type AwsBackupJobEvent,
  type OutcomeEvent,
  type ReportEntry,
  type ReportPeriod,
  type ReportSummary
} from "@backup-actions/reports"
import { AwsBackupJobBook } from "./job-book"
import { ReportStore, reportPrefix, runName } from "./report-store"

const DAY_MS = 86_400_000

/**
 * When the reporter writes a run's report: once no outcome came for `quietSeconds`, and while
 * outcomes keep coming, at the latest `maxWaitSeconds` after the oldest one not yet reported.
 */
export class ReporterSettings extends Context.Tag("backup-actions/ReporterSettings")<
  ReporterSettings,
  { readonly quietSeconds: number; readonly maxWaitSeconds: number }
>() {
  /**
   * BACKUP_ACTIONS_REPORT_QUIET_SECONDS: 1 to 900 (the longest SQS delay), 60 by default.
   * BACKUP_ACTIONS_REPORT_MAX_WAIT_SECONDS: at least the quiet time, 3600 by default.
   */
  static readonly fromEnv = Layer.effect(
    ReporterSettings,
    Config.all({
      quietSeconds: Config.integer("BACKUP_ACTIONS_REPORT_QUIET_SECONDS").pipe(
        Config.withDefault(60),
        Config.validate({ message: "must be between 1 and 900 seconds", validation: (seconds) => seconds >= 1 && seconds <= 900 })
      ),
      maxWaitSeconds: Config.integer("BACKUP_ACTIONS_REPORT_MAX_WAIT_SECONDS").pipe(Config.withDefault(3600))
    }).pipe(
      Config.validate({
        message: "BACKUP_ACTIONS_REPORT_MAX_WAIT_SECONDS must be at least BACKUP_ACTIONS_REPORT_QUIET_SECONDS",
        validation: ({ quietSeconds, maxWaitSeconds }) => maxWaitSeconds >= quietSeconds
      })
    )
  )
}

const failureMessage = (entry: ReportEntry): { subject: string; message: string } => ({
  subject: `backup-actions: ${entry.action} failed for ${entry.recoveryPoint.slice(entry.recoveryPoint.lastIndexOf("/") + 1)}`,
  message: [
    `${entry.action} failed.`,
    "",
    `Recovery point: ${entry.recoveryPoint}`,
    `Time: ${entry.time}`,
    `Reason: ${entry.reason ?? "(none given)"}`,
    "",
    "The source recovery point was kept. Replaying the event re-runs the failed step."
  ].join("\n")
})

/** The last part of an ARN (after its last `/` or `:`), for a subject line. */
const shortArn = (arn: string): string => arn.slice(Math.max(arn.lastIndexOf("/"), arn.lastIndexOf(":")) + 1)

/** The announcement of a failed AWS Backup job: AWS's reason, the job, what it was about and where. */
export const jobFailureMessage = (job: AwsBackupJobEntry): { subject: string; message: string } => {
  const about = job.resourceArn ?? job.recoveryPointArn
  return {
    subject: `backup-actions: AWS Backup ${job.kind} job ${job.state}${about === undefined ? "" : ` for ${shortArn(about)}`}`,
    message: [
      `AWS Backup ${job.kind} job ${job.state}.`,
      "",
      `Reason: ${job.reason ?? "(AWS Backup gave none)"}`,
      `Job id: ${job.jobId}`,
      `Resource: ${job.resourceArn ?? "(not named in the event)"}${job.resourceType === undefined ? "" : ` (${job.resourceType})`}`,
      `Vault: ${job.backupVault ?? "(not named in the event)"}`,
      ...(job.recoveryPointArn === undefined ? [] : [`Recovery point: ${job.recoveryPointArn}`]),
      ...(job.destinationVault === undefined ? [] : [`Destination vault: ${job.destinationVault}`]),
      `Account and region: ${job.account ?? "(not named)"} ${job.region ?? ""}`.trimEnd(),
      `Time: ${job.time}`,
      "",
      "AWS Backup ran this job, not backup-actions; its console and DescribeBackupJob / DescribeCopyJob / DescribeRestoreJob give the details."
    ].join("\n")
  }
}

/** Asks this reporter, through its own queue, to write the run's report once the run goes quiet. */
const scheduleReport = (recordedAt: number) =>
  Effect.gen(function* () {
    const sqs = yield* Sqs
    const { queueUrl } = yield* ServiceSettings
    const { quietSeconds } = yield* ReporterSettings
    const { region } = yield* AwsConfig
    yield* awsCall("sqs:SendMessage", (abortSignal) =>
      sqs.send(
        new SendMessageCommand({
          QueueUrl: queueUrl,
          DelaySeconds: quietSeconds,
          MessageBody: commandBody(ReportDue, { recordedAt }, { region, nowMs: recordedAt })
        }),
        { abortSignal }
      )
    )
  })

/** Records an outcome (once), announces a failure (once), and schedules the run's report. */
export const onOutcome = (event: OutcomeEvent) =>
  Effect.gen(function* () {
    const book = yield* OutcomeBook
    const notifier = yield* Notifier
    const entry = entryOf(event)
    const now = yield* Clock.currentTimeMillis
    const recording = yield* book.record(entry, now)
    if (recording.needsNotification) {
      const { subject, message } = failureMessage(entry)
      yield* notifier.notify(subject, message)
      yield* book.markNotified(entry)
    }
    if (!recording.isNew) {
      yield* Effect.logInfo(`${entry.action} of ${entry.recoveryPoint} already recorded; report unchanged`)
      return
    }
    yield* book.noteRecorded(now)
    yield* scheduleReport(now)
  })

/**
 * Records an AWS Backup job's end state (once), announces a failed job (once: FAILED, ABORTED,
 * EXPIRED or PARTIAL), and schedules the run's report, which counts it.
 */
export const onAwsBackupJob = (event: AwsBackupJobEvent) =>
  Effect.gen(function* () {
    const jobs = yield* AwsBackupJobBook
    const book = yield* OutcomeBook
    const notifier = yield* Notifier
    const job = jobEntryOf(event)
    const now = yield* Clock.currentTimeMillis
    const recording = yield* jobs.record(job, now)
    if (recording.needsNotification) {
      const { subject, message } = jobFailureMessage(job)
      yield* notifier.notify(subject, message)
      yield* jobs.markNotified(job)
    }
    if (!recording.isNew) {
      yield* Effect.logInfo(`AWS Backup ${job.kind} job ${job.jobId} ${job.state} already recorded; report unchanged`)
      return
    }
    yield* book.noteRecorded(now)
    yield* scheduleReport(now)
  })

const publishReport = (period: ReportPeriod, name: string, summary: ReportSummary) =>
  Effect.gen(function* () {
    const store = yield* ReportStore
    const publisher = yield* Publisher
    const stored = yield* store.write(reportPrefix(period, name), summary)
    const id = `report:${period}:${name}`
    yield* publisher.publish(ReportPublished, {
      schemaVersion: 1,
      correlationId: id,
      idempotencyKey: id,
      period,
      json: stored.json,
      csv: stored.csv,
      html: stored.html,
      failures: summary.failed,
      total: summary.total
    })
    return stored
  })

/**
 * Every protected resource's last restore drill, for the report's drills section. Drills are
 * beside what a report is for, so a failure to read them leaves the section out (the log says
 * why) rather than keep the report, and the run's announcement, from being written.
 */
const latestDrills: Effect.Effect<ReadonlyArray<DrillRecord> | undefined, never, DrillBook> = Effect.flatMap(DrillBook, (book) => book.latest).pipe(
  Effect.catchAll((error) =>
    Effect.logWarning(
      `restore drills not read, so the report has no drills section: ${error._tag === "DrillRecordInvalid" ? `drill ${error.key} does not decode: ${error.reason}` : `${error.operation} failed: ${error.code} ${error.message}`}`
    ).pipe(Effect.as(undefined))
  )
)

const dailySummary = (day: string, generatedAtMs: number, drills: ReadonlyArray<DrillRecord> | undefined) =>
  Effect.gen(function* () {
    const book = yield* OutcomeBook
    const jobBook = yield* AwsBackupJobBook
    const recorded = yield* book.entries([day])
    const jobs = yield* jobBook.jobs([day])
    return summarize({
      period: "day",
      title: `backup-actions daily report ${day}`,
      generatedAtMs,
      entries: recorded.map((item) => item.entry),
      jobs: jobs.map((item) => item.job),
      drills
    })
  })

/**
 * The run went quiet: write its report (and refresh the day's), unless a later outcome or
 * another worker took over. A run that never goes quiet is still reported, up to this
 * message's outcome, once its oldest unreported outcome has waited `maxWaitSeconds`.
 */
export const onReportDue = (event: { readonly detail: { readonly recordedAt: number } }) =>
  Effect.gen(function* () {
    const book = yield* OutcomeBook
    const jobBook = yield* AwsBackupJobBook
    const store = yield* ReportStore
    const { maxWaitSeconds } = yield* ReporterSettings
    const until = event.detail.recordedAt
    const state = yield* book.runState
    const stillComing = state.lastRecordedAt > until
    const waitingSince = Option.orElse(state.pendingSince, () => state.lastReportedAt)
    const overdue = Option.exists(waitingSince, (since) => until - since >= maxWaitSeconds * 1000)
    if (stillComing && !overdue) {
      yield* Effect.logDebug("more outcomes came in since; a later report covers them")
      return
    }
    const after = state.lastReportedAt._tag === "Some" ? state.lastReportedAt.value : until - DAY_MS
    if (after >= until) return
    const now = yield* Clock.currentTimeMillis
    const days = daysBetween(after, until)
    const recorded = yield* book.entries(days, { afterMs: after, untilMs: until })
    const jobs = yield* jobBook.jobs(days, { afterMs: after, untilMs: until })
    const drills = yield* latestDrills
    const name = runName(until)
    const summary = summarize({
      period: "run",
      title: `backup-actions run report ${name}`,
      generatedAtMs: now,
      entries: recorded.map((item) => item.entry),
      jobs: jobs.map((item) => item.job),
      drills
    })
    yield* store.write(reportPrefix("day", dayOf(until)), yield* dailySummary(dayOf(until), now, drills))
    yield* store.write(reportPrefix("run", name), summary)
    if (!(yield* book.claimRun(until, { stillPending: stillComing }))) {
      yield* Effect.logInfo(`run ${name} was already reported`)
      return
    }
    yield* publishReport("run", name, summary)
    yield* Effect.logInfo(
      `run report ${name}: ${summary.total} outcomes, ${summary.failed} failed; ${summary.awsBackupJobs?.total ?? 0} AWS Backup jobs, ${summary.awsBackupJobs?.failed ?? 0} failed; ` +
        `${summary.drills?.length ?? 0} restore drills, ${summary.drills?.filter((drill) => drill.result === "failed").length ?? 0} failed`
    )
  })

/** The digest's lines about AWS Backup's own jobs: how many ended in each state, and each failure with its reason. */
const jobDigestLines = (summary: ReportSummary): ReadonlyArray<string> => {
  const jobs = summary.awsBackupJobs
  if (jobs === undefined || jobs.total === 0) return []
  return jobLines(jobs, {
    heading: `AWS Backup jobs: ${jobs.total} ended, ${jobs.failed} failed.`,
    kind: (kind, states) => `- ${kind} jobs: ${states}`,
    failure: (failure) =>
      `- ${failure.kind} job ${failure.jobId} ${failure.state}, ${failure.resourceArn ?? failure.recoveryPointArn ?? "(resource not named)"}, vault ${failure.backupVault ?? "(not named)"}: ${failure.reason ?? "(no reason given)"}`
  })
}

/** The daily digest: the day's report and one message with its totals and failures. */
export const onDigestDue = (event: { readonly detail: { readonly day?: string | undefined } }) =>
  Effect.gen(function* () {
    const notifier = yield* Notifier
    const now = yield* Clock.currentTimeMillis
    const day = event.detail.day ?? dayOf(now - DAY_MS)
    const summary = yield* dailySummary(day, now, yield* latestDrills)
    const stored = yield* publishReport("day", day, summary)
    const lines = [
      `backup-actions on ${day}: ${summary.total} outcomes, ${summary.succeeded} succeeded, ${summary.failed} failed.`,
      `Read ${formatBytes(summary.bytesRead)}, stored ${formatBytes(summary.bytesStored)}.`,
      ...summary.actions.map((action) => `- ${action.action}: ${action.succeeded} succeeded, ${action.failed} failed`),
      ...(summary.failures.length === 0 ? [] : ["", "Failures:", ...summary.failures.map((failure) => `- ${failure.action} ${failure.recoveryPoint}: ${failure.reason ?? ""}`)]),
      ...jobDigestLines(summary),
      "",
      `Report: s3://${stored.html.bucket}/${stored.html.key}`
    ]
    const jobsFailed = summary.awsBackupJobs?.failed ?? 0
    yield* notifier.notify(
      `backup-actions daily digest ${day}: ${summary.failed} failed of ${summary.total}${jobsFailed === 0 ? "" : `, ${jobsFailed} AWS Backup jobs failed`}`,
      lines.join("\n")
    )
  })

export const subscriptions = [
  ...subscriptionSet(
    subscribeTo(ROUTES.reporter.restores, onOutcome),
    subscribeTo(ROUTES.reporter.archives, onOutcome),
    subscribeTo(ROUTES.reporter.exports, onOutcome),
    subscribeTo(ROUTES.reporter.replicas, onOutcome),
    subscribe(ReportDue, onReportDue),
    subscribe(DigestDue, onDigestDue)
  ),
  ...subscriptionSet(
    subscribeTo(ROUTES.reporter.backupJobs, onAwsBackupJob),
    subscribeTo(ROUTES.reporter.copyJobs, onAwsBackupJob),
    subscribeTo(ROUTES.reporter.restoreJobs, onAwsBackupJob)
  )
]

export const ReporterLive = Layer.mergeAll(OutcomeBook.Live, AwsBackupJobBook.Live, DrillBook.Live, Notifier.Live, ReportStore.Live, Publisher.Live, ReporterSettings.fromEnv).pipe(
  // The clients this service calls and no others: a smaller bundle, a faster cold start.
  Layer.provideMerge(Layer.mergeAll(S3.Live, Sqs.Live, EventBridge.Live, DynamoDb.Live, Sns.Live, ServiceSettings.fromEnv)),
  Layer.provideMerge(AwsConfig.fromEnv)
)
