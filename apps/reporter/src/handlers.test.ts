import { assert, describe, it } from "@effect/vitest"
import { SendMessageCommand, SQSClient } from "@aws-sdk/client-sqs"
import { mockClient } from "aws-sdk-client-mock"
import { Effect, Layer, Logger, Option, Schema, TestClock } from "effect"
import { AwsConfig, AwsError, Sqs } from "@backup-actions/aws"
import { ServiceSettings } from "@backup-actions/config"
import { ReportPublished, RestoreJobStateChange, route } from "@backup-actions/contracts"
import { makeMemoryPublisher } from "@backup-actions/consumer/testing"
import { DrillBook, type DrillRecord } from "@backup-actions/ledger"
import { DrillRow, entryOf, jobEntryOf, summarize, toJson, type ReportSummary } from "@backup-actions/reports"
import { archiveEvent } from "@backup-actions/reports/testing"
import { backupJobCompleted, restoreJobFailed } from "./fixtures/aws-backup-job-events"
import { ReporterSettings, onDigestDue, onOutcome, onReportDue, subscriptions } from "./service"
import { makeMemoryAwsBackupJobBook, makeMemoryNotifier, makeMemoryOutcomeBook, makeMemoryReportStore } from "./testing"

/** When the tests' clock starts: a fixed day, so that the day's report and digest are named by it. */
const START = Date.parse("2026-11-22T09:00:00Z")
const DAY = "2026-11-22"

const ReportDueBody = Schema.parseJson(Schema.Struct({ "detail-type": Schema.Literal("Report Due"), detail: Schema.Struct({ recordedAt: Schema.Number }) }))

/**
 * The reporter's handlers over its books, notifier, report store and publisher in memory, and a
 * mocked SQS that takes the report-due messages it sends itself (read back with `scheduled`).
 * `drillBook` stands in for the ledger's drills: the in-memory one (`drills`) unless given.
 */
const reporter = (
  settings: { readonly quietSeconds: number; readonly maxWaitSeconds: number } = { quietSeconds: 1, maxWaitSeconds: 3600 },
  drillBook?: Layer.Layer<DrillBook>
) => {
  const notifier = makeMemoryNotifier()
  const drills = DrillBook.makeTest()
  const store = makeMemoryReportStore()
  const publisher = makeMemoryPublisher()
  const sqsClient = new SQSClient({ region: "us-east-1" })
  const sqs = mockClient(sqsClient)
  sqs.on(SendMessageCommand).resolves({ MessageId: "report-due" })
  const layer = Layer.mergeAll(
    makeMemoryOutcomeBook().layer,
    makeMemoryAwsBackupJobBook().layer,
    drillBook ?? drills.layer,
    notifier.layer,
    store.layer,
    publisher.layer,
    Layer.succeed(ReporterSettings, settings),
    Layer.succeed(Sqs, sqsClient),
    ServiceSettings.layer({ busName: "bus", artifactBucket: "reports", ledgerTable: "ledger", queueUrl: "reporter-queue", deadLetterQueueUrl: "reporter-dlq", workDir: "/tmp" }),
    AwsConfig.layer({ region: "us-east-1" })
  )
  return {
    notifier,
    store,
    drills,
    layer,
    /** The report-due messages sent so far, in order, each with where and with what delay it went. */
    scheduled: Effect.suspend(() =>
      Effect.forEach(sqs.commandCalls(SendMessageCommand), (call) =>
        Schema.decodeUnknown(ReportDueBody)(call.args[0].input.MessageBody).pipe(
          Effect.map((body) => ({ recordedAt: body.detail.recordedAt, queueUrl: call.args[0].input.QueueUrl, delaySeconds: call.args[0].input.DelaySeconds }))
        )
      )
    ),
    /** The Report Published events so far, in order. */
    reports: Effect.suspend(() => Effect.forEach(publisher.published, (event) => ReportPublished.decodeDetail(event.detail)))
  }
}

/** A body on the reporter's queue, routed by the reporter's own subscriptions as the consumer would. */
const deliver = (event: unknown) => Effect.flatten(route(JSON.stringify(event), subscriptions))

describe("the reporter's run reports", () => {
  it.effect("writes no run report while newer outcomes are still coming in", () => {
    // Prepare: two outcomes, each asking for the run's report
    const local = reporter()
    return Effect.gen(function* () {
      yield* TestClock.setTime(START)
      yield* onOutcome(archiveEvent({ snapshot: "snap-3", time: "2026-11-22T08:00:00Z" }))
      yield* TestClock.adjust("10 millis")
      yield* onOutcome(archiveEvent({ snapshot: "snap-4", time: "2026-11-22T08:00:01Z" }))
      const due = yield* local.scheduled
      // Act: only the older report-due message arrives
      yield* onReportDue({ detail: { recordedAt: START } })
      // Assess: each outcome asked for the report once the run is quiet, on the reporter's own queue, and none was written
      assert.deepStrictEqual(due, [
        { recordedAt: START, queueUrl: "reporter-queue", delaySeconds: 1 },
        { recordedAt: START + 10, queueUrl: "reporter-queue", delaySeconds: 1 }
      ])
      assert.deepStrictEqual(yield* local.reports, [])
      assert.deepStrictEqual([...local.store.written.keys()], [])
    }).pipe(Effect.provide(local.layer))
  })

  it.effect("reports a run that never goes quiet once its oldest unreported outcome has waited the longest wait", () => {
    // Prepare: a reporter that waits at most one second; three outcomes, the last two over a second after the first
    const local = reporter({ quietSeconds: 1, maxWaitSeconds: 1 })
    return Effect.gen(function* () {
      yield* TestClock.setTime(START)
      yield* onOutcome(archiveEvent({ snapshot: "snap-5", time: "2026-11-22T09:00:00Z" }))
      yield* TestClock.adjust("1200 millis")
      yield* onOutcome(archiveEvent({ snapshot: "snap-6", time: "2026-11-22T09:00:01Z" }))
      yield* TestClock.adjust("10 millis")
      yield* onOutcome(archiveEvent({ snapshot: "snap-7", time: "2026-11-22T09:00:02Z" }))
      const due = (yield* local.scheduled).map((message) => message.recordedAt)
      // Act: the first outcome's message arrives (not yet overdue), then the second's (overdue, newer ones still coming)
      yield* onReportDue({ detail: { recordedAt: due[0] ?? 0 } })
      const whileBusy = yield* local.reports
      yield* onReportDue({ detail: { recordedAt: due[1] ?? 0 } })
      const overdue = yield* local.reports
      // Act: the last one arrives once the run went quiet
      yield* onReportDue({ detail: { recordedAt: due[2] ?? 0 } })
      const quiet = yield* local.reports
      // Assess: nothing while the wait was short, then the two overdue outcomes, then the rest
      assert.deepStrictEqual(due, [START, START + 1200, START + 1210])
      assert.deepStrictEqual(whileBusy, [])
      assert.deepStrictEqual(
        overdue.map((report) => [report.period, report.total]),
        [["run", 2]]
      )
      assert.deepStrictEqual(
        quiet.map((report) => [report.period, report.total]),
        [
          ["run", 2],
          ["run", 1]
        ]
      )
    }).pipe(Effect.provide(local.layer))
  })
})

/** A drill of a volume as the drill command records it. */
const drill = (volume: string, fields: Partial<DrillRecord> = {}): DrillRecord => ({
  resourceArn: `arn:aws:ec2:us-east-1:123456789012:volume/${volume}`,
  recoveryPoint: `arn:aws:ec2:us-east-1::snapshot/snap-${volume}`,
  artifact: `s3://artifacts/archives/${volume}.tar.zst`,
  target: "snapshot",
  result: "passed",
  startedAt: Date.parse("2026-11-22T03:00:00Z"),
  rtoSeconds: 185,
  scratchDeleted: true,
  ...fields
})

/** The drills section of a written report as its JSON file has it (none when no report was written). */
const drillsInJson = (summary: ReportSummary | undefined) =>
  Schema.decodeUnknown(Schema.parseJson(Schema.Struct({ drills: Schema.optional(Schema.Array(DrillRow)) })))(summary === undefined ? "{}" : toJson(summary)).pipe(
    Effect.map((report) => report.drills)
  )

describe("the restore drills in the reporter's reports", () => {
  it.effect("puts each resource's last drill, the failed one first, in the run's and the day's reports", () => {
    // Prepare: a passed and a failed drill in the ledger, and an outcome that asks for the run's report
    const local = reporter()
    return Effect.gen(function* () {
      yield* TestClock.setTime(START)
      const book = yield* DrillBook
      yield* book.record(drill("vol-a"))
      yield* book.record(drill("vol-b", { result: "failed", reason: "checksum differs", rtoSeconds: undefined, scratchDeleted: false }))
      yield* onOutcome(archiveEvent({ snapshot: "snap-8", time: "2026-11-22T08:00:00Z" }))
      // Act
      yield* onReportDue({ detail: { recordedAt: START } })
      // Assess
      const run = yield* drillsInJson([...local.store.written.entries()].find(([prefix]) => prefix.startsWith("reports/runs/"))?.[1])
      const day = yield* drillsInJson(local.store.written.get(`reports/daily/${DAY}/`))
      assert.deepStrictEqual(
        run?.map((row) => [row.resourceArn, row.result, row.when, row.rtoSeconds, row.reason, row.scratchDeleted]),
        [
          ["arn:aws:ec2:us-east-1:123456789012:volume/vol-b", "failed", "2026-11-22T03:00:00.000Z", undefined, "checksum differs", false],
          ["arn:aws:ec2:us-east-1:123456789012:volume/vol-a", "passed", "2026-11-22T03:00:00.000Z", 185, undefined, true]
        ]
      )
      assert.deepStrictEqual(day, run)
    }).pipe(Effect.provide(local.layer))
  })

  it.effect("writes the reports without drills when they cannot be read, and logs why", () => {
    // Prepare: a ledger whose drills cannot be read, and the warnings logged
    const warnings: Array<string> = []
    const logged = Logger.replace(
      Logger.defaultLogger,
      Logger.make(({ logLevel, message }) => {
        if (logLevel._tag === "Warning") warnings.push([message].flat().join(" "))
      })
    )
    const unreadable = Layer.succeed(DrillBook, {
      record: () => Effect.void,
      latest: Effect.fail(new AwsError({ operation: "dynamodb:Query", code: "AccessDeniedException", message: "not allowed", kind: "client" }))
    })
    const local = reporter(undefined, unreadable)
    return Effect.gen(function* () {
      yield* TestClock.setTime(START)
      yield* onOutcome(archiveEvent({ snapshot: "snap-9", time: "2026-11-22T08:00:00Z" }))
      // Act
      yield* onReportDue({ detail: { recordedAt: START } })
      yield* onDigestDue({ detail: { day: DAY } })
      // Assess: the run's and the day's reports, both announced, neither with a drills section
      const reports = yield* local.reports
      assert.deepStrictEqual(
        reports.map((report) => [report.period, report.total]),
        [
          ["run", 1],
          ["day", 1]
        ]
      )
      assert.deepStrictEqual(
        [...local.store.written.values()].map((summary) => summary.drills),
        [undefined, undefined]
      )
      assert.deepStrictEqual(warnings, [
        "restore drills not read, so the report has no drills section: dynamodb:Query failed: AccessDeniedException not allowed",
        "restore drills not read, so the report has no drills section: dynamodb:Query failed: AccessDeniedException not allowed"
      ])
    }).pipe(Effect.provide(Layer.merge(local.layer, logged)))
  })
})

describe("the reporter's daily digest", () => {
  it.effect("sends the daily digest with the day's totals and publishes the day's report", () => {
    // Prepare: a success and a failure recorded today, the failure announced at once
    const local = reporter()
    return Effect.gen(function* () {
      yield* TestClock.setTime(START)
      yield* onOutcome(archiveEvent({ snapshot: "snap-5", time: "2026-11-22T07:00:00Z" }))
      yield* onOutcome(archiveEvent({ snapshot: "snap-6", time: "2026-11-22T07:00:01Z", failed: true }))
      const announced = local.notifier.sent.length
      // Act
      yield* onDigestDue({ detail: { day: DAY } })
      // Assess: one digest with the day's totals, and the day's report written and announced
      const digest = local.notifier.sent.slice(announced)
      assert.strictEqual(announced, 1)
      assert.strictEqual(digest.length, 1)
      assert.include(digest[0]?.message ?? "", `${DAY}: 2 outcomes, 1 succeeded, 1 failed`)
      assert.include(digest[0]?.message ?? "", `Report: s3://reports/reports/daily/${DAY}/report.html`)
      const reports = yield* local.reports
      assert.deepStrictEqual(
        reports.map((report) => [report.period, report.total, report.failures]),
        [["day", 2, 1]]
      )
      const written = local.store.written.get(`reports/daily/${DAY}/`)
      assert.deepStrictEqual([written?.total, written?.succeeded, written?.failed], [2, 1, 1])
    }).pipe(Effect.provide(local.layer))
  })

  it.effect("lists the day's AWS Backup jobs and their failures in the daily digest", () => {
    // Prepare: a completed and a failed AWS Backup job, the failure announced at once
    const local = reporter()
    return Effect.gen(function* () {
      yield* TestClock.setTime(START)
      yield* Effect.forEach([backupJobCompleted, restoreJobFailed], deliver, { discard: true })
      const announced = local.notifier.sent.length
      // Act
      yield* onDigestDue({ detail: { day: DAY } })
      // Assess
      const digest = local.notifier.sent.slice(announced)
      assert.strictEqual(announced, 1)
      assert.strictEqual(digest.length, 1)
      assert.include(digest[0]?.subject ?? "", "1 AWS Backup jobs failed")
      assert.include(digest[0]?.message ?? "", "AWS Backup jobs: 2 ended, 1 failed.")
      assert.include(digest[0]?.message ?? "", "- restore job 1B234A56-789B-01CD-2A34-4567A08901FD FAILED")
      assert.include(digest[0]?.message ?? "", "AWS Backup does not permit attaching a new instance profile")
    }).pipe(Effect.provide(local.layer))
  })
})

describe("the in-memory outcome book", () => {
  it.effect("records an outcome once, lets a newer one replace it, and asks to announce a failure until it is marked", () =>
    Effect.gen(function* () {
      // Prepare
      const { book } = makeMemoryOutcomeBook()
      const failure = entryOf(archiveEvent({ snapshot: "snap-1", time: "2026-11-22T08:00:00Z", failed: true }))
      const success = entryOf(archiveEvent({ snapshot: "snap-1", time: "2026-11-22T08:30:00Z" }))
      // Act
      const first = yield* book.record(failure, START)
      const replayedBeforeMarked = yield* book.record(failure, START + 1)
      yield* book.markNotified(failure)
      const replayedAfterMarked = yield* book.record(failure, START + 2)
      const rerun = yield* book.record(success, START + 3)
      const lateFailure = yield* book.record(failure, START + 4)
      const entries = yield* book.entries([DAY])
      // Assess
      assert.deepStrictEqual(
        [first, replayedBeforeMarked, replayedAfterMarked, rerun, lateFailure],
        [
          { isNew: true, needsNotification: true },
          { isNew: false, needsNotification: true },
          { isNew: false, needsNotification: false },
          { isNew: true, needsNotification: false },
          { isNew: false, needsNotification: false }
        ]
      )
      assert.deepStrictEqual(
        entries.map((recorded) => [recorded.entry.status, recorded.recordedAt]),
        [["succeeded", START + 3]]
      )
    })
  )

  it.effect("moves the run's times only forward and keeps the pending span open while outcomes are still pending", () =>
    Effect.gen(function* () {
      // Prepare
      const { book } = makeMemoryOutcomeBook()
      // Act
      yield* book.noteRecorded(START)
      yield* book.noteRecorded(START + 10)
      yield* book.noteRecorded(START + 5)
      const recorded = yield* book.runState
      const claims = [yield* book.claimRun(START + 5, { stillPending: true }), yield* book.claimRun(START + 5, { stillPending: false })]
      const pending = yield* book.runState
      const last = yield* book.claimRun(START + 10, { stillPending: false })
      const quiet = yield* book.runState
      // Assess
      assert.deepStrictEqual(recorded, { lastRecordedAt: START + 10, lastReportedAt: Option.none(), pendingSince: Option.some(START) })
      assert.deepStrictEqual(claims, [true, false])
      assert.deepStrictEqual(pending.pendingSince, Option.some(START + 5))
      assert.isTrue(last)
      assert.deepStrictEqual(quiet, { lastRecordedAt: START + 10, lastReportedAt: Option.some(START + 10), pendingSince: Option.none() })
    })
  )
})

describe("the in-memory AWS Backup job book", () => {
  it.effect("records a job's state once and asks to announce its failure until it is marked, also on a later day", () =>
    Effect.gen(function* () {
      // Prepare
      const { book } = makeMemoryAwsBackupJobBook()
      const job = jobEntryOf(yield* RestoreJobStateChange.decode(restoreJobFailed))
      // Act
      const first = yield* book.record(job, START)
      const again = yield* book.record(job, START + 86_400_000)
      yield* book.markNotified(job)
      const marked = yield* book.record(job, START + 86_400_001)
      const jobs = yield* book.jobs([DAY, "2026-11-23"], { afterMs: START - 1, untilMs: START + 86_400_001 })
      // Assess
      assert.deepStrictEqual([first, again, marked], [
        { isNew: true, needsNotification: true },
        { isNew: false, needsNotification: true },
        { isNew: false, needsNotification: false }
      ])
      assert.deepStrictEqual(
        jobs.map((recorded) => [recorded.job.jobId, recorded.recordedAt]),
        [[job.jobId, START]]
      )
    })
  )
})

describe("the in-memory notifier and report store", () => {
  it.effect("keep each message with its subject as SNS takes it, and each report by its prefix, the last write winning", () =>
    Effect.gen(function* () {
      // Prepare
      const notifier = makeMemoryNotifier()
      const store = makeMemoryReportStore("artifacts")
      const summaryOf = (snapshots: ReadonlyArray<string>) =>
        summarize({ period: "day", title: "day", generatedAtMs: START, entries: snapshots.map((snapshot) => entryOf(archiveEvent({ snapshot, time: "2026-11-22T08:00:00Z" }))), jobs: [] })
      // Act
      yield* notifier.notifier.notify(`failed for ${"x".repeat(120)}\u00e9`, "the body")
      yield* store.store.write("reports/daily/2026-11-22/", summaryOf([]))
      const stored = yield* store.store.write("reports/daily/2026-11-22/", summaryOf(["snap-2"]))
      // Assess
      assert.deepStrictEqual(notifier.sent, [{ subject: `failed for ${"x".repeat(89)}`, message: "the body" }])
      assert.strictEqual(stored.html.key, "reports/daily/2026-11-22/report.html")
      assert.strictEqual(stored.json.bucket, "artifacts")
      assert.deepStrictEqual([...store.written.keys()], ["reports/daily/2026-11-22/"])
      assert.strictEqual(store.written.get("reports/daily/2026-11-22/")?.total, 1)
    })
  )
})
