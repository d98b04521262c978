import { join } from "node:path"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { GetObjectCommand } from "@aws-sdk/client-s3"
import { PutEventsCommand } from "@aws-sdk/client-eventbridge"
import { Effect, Layer, Schema } from "effect"
import { EventBridge, S3, awsCall } from "@backup-actions/aws"
import { ReportPublished, RestoreJobStateChange, route } from "@backup-actions/contracts"
import { Publisher } from "@backup-actions/consumer"
import { DrillBook } from "@backup-actions/ledger"
import {
  emulatorAwsConfig,
  emulatorClients,
  provisionService,
  serviceSettingsFor,
  startEmulator,
  drainQueue,
  tapBus,
  tapTopic,
  localStateDir,
  type Emulator
} from "@backup-actions/local"
import { OutcomeBook } from "./book"
import { renderInChromium } from "./browser-check"
import { AwsBackupJobsSection, jobEntryOf } from "@backup-actions/reports"
import { archiveEvent, exportEvent, replicaEvent } from "@backup-actions/reports/testing"
import {
  backupJobAborted,
  backupJobCompleted,
  backupJobExpired,
  backupJobFailed,
  backupJobRunning,
  copyJobCompleted,
  copyJobFailed,
  restoreJobCompleted,
  restoreJobFailed,
  restoreJobRunning
} from "./fixtures/aws-backup-job-events"
import { AwsBackupJobBook } from "./job-book"
import { Notifier } from "./notifier"
import { ReportStore } from "./report-store"
import { ReporterSettings, onOutcome, onReportDue, subscriptions } from "./service"

let emulator: Emulator
beforeAll(async () => {
  emulator = await startEmulator({ name: "reporter-test" })
})
afterAll(() => emulator.stop())

/** A reporter of its own (own table, queue, topic and bucket) per test, with taps on its topic and on Report Published. */
const reporterStack = (prefix: string, maxWaitSeconds = 3600) =>
  Effect.gen(function* () {
    const stack = yield* provisionService({ prefix, service: "reporter" })
    const notifications = yield* tapTopic(stack.notificationTopicArn, `${prefix}-notifications-tap`)
    const reports = yield* tapBus(stack.busName, ReportPublished.pattern(), `${prefix}-reports-tap`)
    const settings = serviceSettingsFor(stack, "reporter", { notificationTopicArn: stack.notificationTopicArn })
    const layer = Layer.mergeAll(OutcomeBook.Live, AwsBackupJobBook.Live, DrillBook.Live, Notifier.Live, ReportStore.Live, Publisher.Live, Layer.succeed(ReporterSettings, { quietSeconds: 1, maxWaitSeconds })).pipe(
      Layer.provideMerge(Layer.mergeAll(emulatorClients(emulator.endpoint), settings, emulatorAwsConfig(emulator.endpoint)))
    )
    return { stack, notifications, reports, layer, queueUrl: stack.queues.reporter?.url ?? "" }
  })

const ReportJson = Schema.parseJson(
  Schema.Struct({
    total: Schema.Number,
    failed: Schema.Number,
    succeeded: Schema.Number,
    entries: Schema.Array(Schema.Struct({ action: Schema.String, status: Schema.String })),
    drills: Schema.optional(Schema.Array(Schema.Struct({ resourceArn: Schema.String, result: Schema.String, when: Schema.String })))
  })
)

const readObject = (bucket: string, key: string) =>
  Effect.gen(function* () {
    const s3 = yield* S3
    const object = yield* awsCall("s3:GetObject", (abortSignal) => s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }), { abortSignal }))
    return yield* Effect.promise(() => object.Body?.transformToString() ?? Promise.resolve(""))
  })

const PublishedReport = Schema.parseJson(Schema.Struct({ detail: Schema.Struct({ period: Schema.String, total: Schema.Number, failures: Schema.Number, json: Schema.Struct({ bucket: Schema.String, key: Schema.String }), csv: Schema.Struct({ bucket: Schema.String, key: Schema.String }), html: Schema.Struct({ bucket: Schema.String, key: Schema.String }) }) }))
const ReportDueBody = Schema.parseJson(Schema.Struct({ "detail-type": Schema.Literal("Report Due"), detail: Schema.Struct({ recordedAt: Schema.Number }) }))

describe("the reporter on the emulator", () => {
  it.live("records each outcome once, announces the failure once, and reports the run, with the last restore drill, in JSON, CSV and HTML", () =>
    Effect.gen(function* () {
      // Prepare: and a failed restore drill in the ledger
      const local = yield* reporterStack("report-run")
      yield* Effect.flatMap(DrillBook, (drills) =>
        drills.record({
          resourceArn: "arn:aws:ec2:us-east-1:123456789012:volume/vol-1",
          recoveryPoint: "arn:aws:ec2:us-east-1::snapshot/snap-1",
          artifact: "s3://artifacts/archives/snap-1.tar.zst",
          target: "snapshot",
          result: "failed",
          reason: "checksum differs",
          startedAt: Date.parse("2026-11-22T03:00:00Z"),
          scratchDeleted: true
        })
      ).pipe(Effect.provide(local.layer))
      const outcomes = [
        archiveEvent({ snapshot: "snap-1", time: "2026-11-22T10:00:00Z" }),
        exportEvent({ table: "orders", time: "2026-11-22T10:00:01Z", failed: true }),
        replicaEvent({ snapshot: "snap-1", time: "2026-11-22T10:00:02Z", ageSeconds: 120 })
      ]
      // Act: every outcome, then all of them again as a replay would deliver them
      yield* Effect.forEach([...outcomes, ...outcomes], onOutcome, { discard: true }).pipe(Effect.provide(local.layer))
      // Assess: one failure message, however often its event came
      const notifications = yield* local.notifications.drain(2)
      assert.strictEqual(notifications.length, 1)
      assert.include(notifications[0], "export:parquet failed")
      assert.include(notifications[0], "not found")
      // Assess: one report-due message per new outcome, none for the replays
      const due = yield* Effect.forEach(yield* drainAfterDelay(local), (body) => Schema.decodeUnknown(ReportDueBody)(body))
      assert.strictEqual(due.length, 3)
      // Act: the last one arrives
      const last = Math.max(...due.map((message) => message.detail.recordedAt))
      yield* Effect.forEach(due, (message) => onReportDue(message), { discard: true }).pipe(Effect.provide(local.layer))
      // Assess: exactly one run report, announced once, with the run's totals
      const published = yield* Effect.forEach(yield* local.reports.drain(2), (body) => Schema.decodeUnknown(PublishedReport)(body))
      assert.strictEqual(published.length, 1)
      const report = published[0]?.detail
      assert.strictEqual(report?.period, "run")
      assert.strictEqual(report?.total, 3)
      assert.strictEqual(report?.failures, 1)
      assert.include(report?.json.key ?? "", new Date(last).toISOString().slice(0, 10).replaceAll("-", ""))
      const json = yield* Schema.decodeUnknown(ReportJson)(yield* readObject(report?.json.bucket ?? "", report?.json.key ?? "")).pipe(Effect.provide(local.layer))
      assert.deepStrictEqual([json.total, json.succeeded, json.failed], [3, 2, 1])
      assert.deepStrictEqual(json.drills, [{ resourceArn: "arn:aws:ec2:us-east-1:123456789012:volume/vol-1", result: "failed", when: "2026-11-22T03:00:00.000Z" }])
      const csv = yield* readObject(report?.csv.bucket ?? "", report?.csv.key ?? "").pipe(Effect.provide(local.layer))
      assert.strictEqual(csv.trimEnd().split("\r\n").length, 5)
      const html = yield* readObject(report?.html.bucket ?? "", report?.html.key ?? "").pipe(Effect.provide(local.layer))
      assert.include(html, "export:parquet")
      assert.include(html, "Newest replica per source")
      assert.include(html, "<h2>Restore drills</h2>")
      // Assess: the page renders in a real browser, with the run's numbers and no console errors
      const page = yield* Effect.promise(() => renderInChromium(html, join(localStateDir(), "screenshots", "report-run.png")))
      assert.deepStrictEqual(page.errors, [])
      assert.deepStrictEqual([page.metrics["outcomes"], page.metrics["succeeded"], page.metrics["failed"]], ["3", "2", "1"])
      assert.strictEqual(page.failureRows, 1)
      assert.isAbove(page.screenshotBytes, 10_000)
    }).pipe(Effect.provide(emulatorClients(emulator.endpoint)))
  )

  it.live("replaces a failure with the success of the step's re-run", () =>
    Effect.gen(function* () {
      // Prepare: a failed archive, then its re-run that succeeded
      const local = yield* reporterStack("report-rerun")
      const failure = archiveEvent({ snapshot: "snap-2", time: "2026-11-22T09:00:00Z", failed: true })
      const success = archiveEvent({ snapshot: "snap-2", time: "2026-11-22T09:30:00Z" })
      // Act: and a late replay of the failure after both
      yield* Effect.forEach([failure, success, failure], onOutcome, { discard: true }).pipe(Effect.provide(local.layer))
      const due = yield* Effect.forEach(yield* drainAfterDelay(local), (body) => Schema.decodeUnknown(ReportDueBody)(body))
      const last = Math.max(...due.map((message) => message.detail.recordedAt))
      yield* onReportDue({ detail: { recordedAt: last } }).pipe(Effect.provide(local.layer))
      const day = new Date(last).toISOString().slice(0, 10)
      const daily = yield* readObject(local.stack.artifactBucket, `reports/daily/${day}/report.json`).pipe(Effect.provide(local.layer))
      // Assess: the day shows the step once, succeeded
      const json = yield* Schema.decodeUnknown(ReportJson)(daily)
      assert.strictEqual(due.length, 2)
      assert.deepStrictEqual(
        json.entries.filter((entry) => entry.action === "archive:direct").map((entry) => entry.status),
        ["succeeded"]
      )
    }).pipe(Effect.provide(emulatorClients(emulator.endpoint)))
  )
})

/** A body on the reporter's queue, routed by the reporter's own subscriptions as the consumer would. */
const deliver = (event: unknown) => Effect.flatten(route(JSON.stringify(event), subscriptions))

/** The text of each SNS message a topic tap received. */
const SnsEnvelope = Schema.parseJson(Schema.Struct({ Subject: Schema.optional(Schema.String), Message: Schema.String }))
const messagesOf = (bodies: ReadonlyArray<string>) => Effect.forEach(bodies, (body) => Schema.decodeUnknown(SnsEnvelope)(body))

const ReportWithJobs = Schema.parseJson(Schema.Struct({ total: Schema.Number, awsBackupJobs: AwsBackupJobsSection }))

/**
 * AWS's documented failed copy job without its `destinationRecoveryPointArn: {}`, which the
 * copy job contract (a string there) does not take yet: see aws-backup-jobs.test.ts.
 */
const { destinationRecoveryPointArn: _emptyDestination, ...copyJobFailedDetail } = copyJobFailed.detail
const copyJobFailedWithoutDestination = { ...copyJobFailed, detail: copyJobFailedDetail }

/** Writes the run's report for every report-due message the reporter sent itself, and returns the one published. */
const runReport = (local: Effect.Effect.Success<ReturnType<typeof reporterStack>>) =>
  Effect.gen(function* () {
    const due = yield* Effect.forEach(yield* drainAfterDelay(local), (body) => Schema.decodeUnknown(ReportDueBody)(body))
    yield* Effect.forEach(due, (message) => onReportDue(message), { discard: true }).pipe(Effect.provide(local.layer))
    const published = yield* Effect.forEach(yield* local.reports.drain(2), (body) => Schema.decodeUnknown(PublishedReport)(body))
    return { due, published }
  })

describe("AWS Backup's own jobs on the emulator", () => {
  it.live("announces a failed backup job once with AWS's reason, and reports it once, also when its event comes twice", () =>
    Effect.gen(function* () {
      // Prepare
      const local = yield* reporterStack("jobs-backup-failed")
      // Act: AWS's documented FAILED backup job, delivered twice as EventBridge may
      yield* Effect.forEach([backupJobFailed, backupJobFailed], deliver, { discard: true }).pipe(Effect.provide(local.layer))
      const { due, published } = yield* runReport(local)
      // Assess: one message with the reason (without AWS's quotes), the job, the resource and the vault
      const notifications = yield* messagesOf(yield* local.notifications.drain(2))
      assert.strictEqual(notifications.length, 1)
      const message = notifications[0]?.Message ?? ""
      assert.include(notifications[0]?.Subject ?? "", "AWS Backup backup job FAILED")
      assert.include(message, "Reason: Backup job failed because backup vault arn:aws:backup:us-west-2:1112233445566:backup-vault:9ab3e749-82c6-4342-9320-5edbf4918b86 does not exist.")
      assert.include(message, "Job id: 34176239-e96d-4e1d-9fad-529dbb3c3556")
      assert.include(message, "Resource: arn:aws:service:us-west-2:1112233445566:resource-type/resource-id")
      assert.include(message, "Vault: 9ab3e749-82c6-4342-9320-5edbf4918b86")
      // Assess: one report-due message, one run report with one job row in JSON and CSV
      assert.strictEqual(due.length, 1)
      assert.strictEqual(published.length, 1)
      const report = published[0]?.detail
      const json = yield* Schema.decodeUnknown(ReportWithJobs)(yield* readObject(report?.json.bucket ?? "", report?.json.key ?? "")).pipe(Effect.provide(local.layer))
      assert.strictEqual(json.total, 0)
      assert.deepStrictEqual(json.awsBackupJobs.counts, [{ kind: "backup", state: "FAILED", count: 1 }])
      assert.deepStrictEqual(
        json.awsBackupJobs.failures.map((failure) => [failure.jobId, failure.backupVault, failure.reason]),
        [
          [
            "34176239-e96d-4e1d-9fad-529dbb3c3556",
            "9ab3e749-82c6-4342-9320-5edbf4918b86",
            "Backup job failed because backup vault arn:aws:backup:us-west-2:1112233445566:backup-vault:9ab3e749-82c6-4342-9320-5edbf4918b86 does not exist."
          ]
        ]
      )
      const csv = (yield* readObject(report?.csv.bucket ?? "", report?.csv.key ?? "").pipe(Effect.provide(local.layer))).trimEnd().split("\r\n")
      assert.strictEqual(csv.length, 2)
      assert.include(csv[1], ",aws-backup,backup-job,failed,")
      assert.isTrue(csv[1]?.endsWith(",34176239-e96d-4e1d-9fad-529dbb3c3556,FAILED,9ab3e749-82c6-4342-9320-5edbf4918b86,arn:aws:service:us-west-2:1112233445566:resource-type/resource-id,,"))
    }).pipe(Effect.provide(emulatorClients(emulator.endpoint)))
  )

  it.live("counts a completed backup job in the report without announcing it", () =>
    Effect.gen(function* () {
      // Prepare
      const local = yield* reporterStack("jobs-backup-completed")
      // Act
      yield* Effect.forEach([backupJobCompleted, backupJobCompleted], deliver, { discard: true }).pipe(Effect.provide(local.layer))
      const { published } = yield* runReport(local)
      // Assess
      assert.strictEqual((yield* local.notifications.drain(1)).length, 0)
      const report = published[0]?.detail
      const json = yield* Schema.decodeUnknown(ReportWithJobs)(yield* readObject(report?.json.bucket ?? "", report?.json.key ?? "")).pipe(Effect.provide(local.layer))
      assert.deepStrictEqual(json.awsBackupJobs.counts, [{ kind: "backup", state: "COMPLETED", count: 1 }])
      assert.deepStrictEqual(json.awsBackupJobs.failures, [])
      assert.strictEqual(json.awsBackupJobs.jobs[0]?.recoveryPointArn, "arn:aws:backup:us-west-2:1112233445566:recovery-point:f1d966fe-a3bd-410b-b292-99f442d13b56")
    }).pipe(Effect.provide(emulatorClients(emulator.endpoint)))
  )

  it.live("announces each failed copy, restore and backup job once, counts the completed ones, and shows them all in the HTML page", () =>
    Effect.gen(function* () {
      // Prepare
      const local = yield* reporterStack("jobs-mixed")
      const events = [copyJobFailedWithoutDestination, copyJobCompleted, restoreJobFailed, restoreJobCompleted, backupJobAborted, backupJobExpired]
      // Act: each event twice
      yield* Effect.forEach([...events, ...events], deliver, { discard: true }).pipe(Effect.provide(local.layer))
      const { due, published } = yield* runReport(local)
      // Assess: one message per failed job, each with AWS's reason
      const notifications = yield* messagesOf(yield* local.notifications.drain(2))
      assert.strictEqual(due.length, 6)
      assert.deepStrictEqual(
        notifications.map((notification) => notification.Message.split("\n")[0]).sort(),
        ["AWS Backup backup job ABORTED.", "AWS Backup backup job EXPIRED.", "AWS Backup copy job FAILED.", "AWS Backup restore job FAILED."]
      )
      const text = notifications.map((notification) => notification.Message).join("\n")
      assert.include(text, "Reason: Access denied exception while trying to list tags")
      assert.include(text, "Job id: 47C8EF56-74D8-059D-1301-C5BE1D5C926E")
      assert.include(text, "Vault: 55aa945e-c46a-421b-aa27-f94b074e31b7")
      assert.include(text, "Reason: AWS Backup does not permit attaching a new instance profile to an EC2 instance.")
      assert.include(text, "Job id: 1B234A56-789B-01CD-2A34-4567A08901FD")
      assert.include(text, "Reason: Backup job was stopped by user.")
      assert.include(text, "Reason: Backup job failed because there was a running job for the same resource.")
      // Assess: the counts per kind of job and state, and the failures with their reasons
      assert.strictEqual(published.length, 1)
      const report = published[0]?.detail
      const json = yield* Schema.decodeUnknown(ReportWithJobs)(yield* readObject(report?.json.bucket ?? "", report?.json.key ?? "")).pipe(Effect.provide(local.layer))
      assert.deepStrictEqual(
        json.awsBackupJobs.counts.map((count) => `${count.kind} ${count.state} ${count.count}`),
        ["backup ABORTED 1", "backup EXPIRED 1", "copy COMPLETED 1", "copy FAILED 1", "restore COMPLETED 1", "restore FAILED 1"]
      )
      assert.deepStrictEqual([json.awsBackupJobs.total, json.awsBackupJobs.failed, json.awsBackupJobs.failures.length], [6, 4, 4])
      const restored = json.awsBackupJobs.jobs.find((job) => job.kind === "restore" && !job.failed)
      assert.strictEqual(restored?.createdResourceArn, "arn:aws:rds:us-west-2:1112233445566:db:testinginstance1a2bcd34-567e-8901-23f4-5g6hijkl7890")
      assert.strictEqual(restored?.backupVault, "ExampleVault")
      const csv = (yield* readObject(report?.csv.bucket ?? "", report?.csv.key ?? "").pipe(Effect.provide(local.layer))).trimEnd().split("\r\n")
      assert.strictEqual(csv.length, 7)
      // Assess: the page renders in a real browser with the section's counts and failures
      const html = yield* readObject(report?.html.bucket ?? "", report?.html.key ?? "").pipe(Effect.provide(local.layer))
      const page = yield* Effect.promise(() => renderInChromium(html, join(localStateDir(), "screenshots", "report-aws-backup-jobs.png")))
      assert.deepStrictEqual(page.errors, [])
      assert.deepStrictEqual([page.metrics["AWS Backup jobs"], page.metrics["AWS Backup jobs failed"]], ["6", "4"])
      assert.deepStrictEqual(page.jobCounts["copy"], { COMPLETED: "1", FAILED: "1", ABORTED: "0", EXPIRED: "0", total: "2" })
      assert.deepStrictEqual(page.jobCounts["backup"], { COMPLETED: "0", FAILED: "0", ABORTED: "1", EXPIRED: "1", total: "2" })
      assert.deepStrictEqual(
        page.jobFailures.map((failure) => `${failure.job} ${failure.state}`),
        ["restore FAILED", "copy FAILED", "backup ABORTED", "backup EXPIRED"]
      )
      assert.include(page.jobFailures[1]?.reason ?? "", "Access denied exception while trying to list tags")
      assert.strictEqual(page.failureRows, 0)
      assert.isAbove(page.screenshotBytes, 10_000)
    }).pipe(Effect.provide(emulatorClients(emulator.endpoint)))
  )

  it.live("announces a failed job once when a crash came between recording it and announcing it", () =>
    Effect.gen(function* () {
      // Prepare: the job recorded, then the worker died before it notified
      const local = yield* reporterStack("jobs-crash")
      const event = yield* RestoreJobStateChange.decode(restoreJobFailed)
      yield* Effect.flatMap(AwsBackupJobBook, (book) => book.record(jobEntryOf(event), Date.now())).pipe(Effect.provide(local.layer))
      // Act: the message comes back, and once more
      yield* Effect.forEach([restoreJobFailed, restoreJobFailed], deliver, { discard: true }).pipe(Effect.provide(local.layer))
      // Assess: announced once; no new report for a job already recorded
      const notifications = yield* messagesOf(yield* local.notifications.drain(2))
      assert.strictEqual(notifications.length, 1)
      assert.include(notifications[0]?.Message ?? "", "Job id: 1B234A56-789B-01CD-2A34-4567A08901FD")
      assert.strictEqual((yield* drainAfterDelay(local)).length, 0)
    }).pipe(Effect.provide(emulatorClients(emulator.endpoint)))
  )

  it.live("takes AWS Backup's job events from the bus in their end states only, through the reporter's rules", () =>
    Effect.gen(function* () {
      // Prepare
      const local = yield* reporterStack("jobs-rules")
      const events = yield* EventBridge
      const samples = [backupJobFailed, backupJobRunning, backupJobCompleted, copyJobCompleted, restoreJobRunning, restoreJobCompleted]
      // Act: AWS Backup's events on the bus, as the forwarding rule puts them there
      const put = yield* awsCall("events:PutEvents", (abortSignal) =>
        events.send(
          new PutEventsCommand({
            Entries: samples.map((sample) => ({
              EventBusName: local.stack.busName,
              Source: sample.source,
              DetailType: sample["detail-type"],
              Resources: [...sample.resources],
              Detail: JSON.stringify(sample.detail)
            }))
          }),
          { abortSignal }
        )
      )
      const received = yield* drainQueue(local.queueUrl)(3)
      const more = yield* drainQueue(local.queueUrl)(1)
      // Assess: the completed and failed jobs arrive, the running ones do not
      assert.strictEqual(put.FailedEntryCount ?? 0, 0)
      const StateOf = Schema.parseJson(
        Schema.Struct({ "detail-type": Schema.String, detail: Schema.Struct({ state: Schema.optional(Schema.String), status: Schema.optional(Schema.String) }) })
      )
      const arrived = yield* Effect.forEach([...received, ...more], (body) => Schema.decodeUnknown(StateOf)(body))
      assert.deepStrictEqual(
        arrived.map((event) => `${event["detail-type"]} ${event.detail.state ?? event.detail.status ?? ""}`).sort(),
        ["Backup Job State Change COMPLETED", "Backup Job State Change FAILED", "Copy Job State Change COMPLETED", "Restore Job State Change COMPLETED"]
      )
      // Assess: and the reporter's subscriptions take each as it arrived
      const handlers = yield* Effect.forEach([...received, ...more], (body) => route(body, subscriptions))
      assert.strictEqual(handlers.length, 4)
    }).pipe(Effect.provide(emulatorClients(emulator.endpoint)))
  )
})

/** The report-due messages the reporter sent itself, once their delay has passed. */
const drainAfterDelay = (local: { readonly queueUrl: string }) =>
  Effect.gen(function* () {
    yield* Effect.sleep("1500 millis")
    return yield* drainQueue(local.queueUrl)(2)
  })
