import { join } from "node:path"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { GetObjectCommand } from "@aws-sdk/client-s3"
import { Effect, Layer, Schema } from "effect"
import { S3, awsCall } from "@backup-actions/aws"
import { ReportPublished } from "@backup-actions/contracts"
import { Publisher } from "@backup-actions/consumer"
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
import { archiveEvent, exportEvent, replicaEvent } from "@backup-actions/reports"
import { Notifier } from "./notifier"
import { ReportStore } from "./report-store"
import { ReporterSettings, onDigestDue, onOutcome, onReportDue } from "./service"

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
    const layer = Layer.mergeAll(OutcomeBook.Live, Notifier.Live, ReportStore.Live, Publisher.Live, Layer.succeed(ReporterSettings, { quietSeconds: 1, maxWaitSeconds })).pipe(
      Layer.provideMerge(Layer.mergeAll(emulatorClients(emulator.endpoint), settings, emulatorAwsConfig(emulator.endpoint)))
    )
    return { stack, notifications, reports, layer, queueUrl: stack.queues.reporter?.url ?? "" }
  })

const ReportJson = Schema.parseJson(
  Schema.Struct({
    total: Schema.Number,
    failed: Schema.Number,
    succeeded: Schema.Number,
    entries: Schema.Array(Schema.Struct({ action: Schema.String, status: Schema.String }))
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
  it.live("records each outcome once, announces the failure once, and reports the run in JSON, CSV and HTML", () =>
    Effect.gen(function* () {
      // Prepare
      const local = yield* reporterStack("report-run")
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
      const csv = yield* readObject(report?.csv.bucket ?? "", report?.csv.key ?? "").pipe(Effect.provide(local.layer))
      assert.strictEqual(csv.trimEnd().split("\r\n").length, 4)
      const html = yield* readObject(report?.html.bucket ?? "", report?.html.key ?? "").pipe(Effect.provide(local.layer))
      assert.include(html, "export:parquet")
      assert.include(html, "Newest replica per source")
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

  it.live("writes no run report while newer outcomes are still coming in", () =>
    Effect.gen(function* () {
      // Prepare
      const local = yield* reporterStack("report-busy")
      yield* onOutcome(archiveEvent({ snapshot: "snap-3", time: "2026-11-22T08:00:00Z" })).pipe(Effect.provide(local.layer))
      yield* onOutcome(archiveEvent({ snapshot: "snap-4", time: "2026-11-22T08:00:01Z" })).pipe(Effect.provide(local.layer))
      const due = yield* Effect.forEach(yield* drainAfterDelay(local), (body) => Schema.decodeUnknown(ReportDueBody)(body))
      const first = Math.min(...due.map((message) => message.detail.recordedAt))
      // Act: only the older report-due message arrives
      yield* onReportDue({ detail: { recordedAt: first } }).pipe(Effect.provide(local.layer))
      // Assess
      assert.strictEqual(due.length, 2)
      assert.strictEqual((yield* local.reports.drain(1)).length, 0)
    }).pipe(Effect.provide(emulatorClients(emulator.endpoint)))
  )

  it.live("reports a run that never goes quiet once its oldest unreported outcome has waited the longest wait", () =>
    Effect.gen(function* () {
      // Prepare: a reporter that waits at most one second; three outcomes, the last two over a second after the first
      const local = yield* reporterStack("report-stream", 1)
      yield* onOutcome(archiveEvent({ snapshot: "snap-5", time: "2026-11-22T09:00:00Z" })).pipe(Effect.provide(local.layer))
      yield* Effect.sleep("1200 millis")
      yield* onOutcome(archiveEvent({ snapshot: "snap-6", time: "2026-11-22T09:00:01Z" })).pipe(Effect.provide(local.layer))
      yield* onOutcome(archiveEvent({ snapshot: "snap-7", time: "2026-11-22T09:00:02Z" })).pipe(Effect.provide(local.layer))
      const due = (yield* Effect.forEach(yield* drainAfterDelay(local), (body) => Schema.decodeUnknown(ReportDueBody)(body)))
        .map((message) => message.detail.recordedAt)
        .sort((a, b) => a - b)
      // Act: the first outcome's message arrives (not yet overdue), then the second's (overdue, newer ones still coming)
      yield* onReportDue({ detail: { recordedAt: due[0] ?? 0 } }).pipe(Effect.provide(local.layer))
      const whileBusy = yield* local.reports.drain(1)
      yield* onReportDue({ detail: { recordedAt: due[1] ?? 0 } }).pipe(Effect.provide(local.layer))
      const overdue = yield* Effect.forEach(yield* local.reports.drain(2), (body) => Schema.decodeUnknown(PublishedReport)(body))
      // Act: the last one arrives once the run went quiet
      yield* onReportDue({ detail: { recordedAt: due[2] ?? 0 } }).pipe(Effect.provide(local.layer))
      const quiet = yield* Effect.forEach(yield* local.reports.drain(2), (body) => Schema.decodeUnknown(PublishedReport)(body))
      // Assess: nothing while the wait was short, then the two overdue outcomes, then the rest
      assert.strictEqual(due.length, 3)
      assert.strictEqual(whileBusy.length, 0)
      assert.deepStrictEqual(overdue.map((report) => report.detail.total), [2])
      assert.deepStrictEqual(quiet.map((report) => report.detail.total), [1])
    }).pipe(Effect.provide(emulatorClients(emulator.endpoint)))
  )

  it.live("sends the daily digest with the day's totals and publishes the day's report", () =>
    Effect.gen(function* () {
      // Prepare
      const local = yield* reporterStack("report-digest")
      yield* onOutcome(archiveEvent({ snapshot: "snap-5", time: "2026-11-22T07:00:00Z" })).pipe(Effect.provide(local.layer))
      yield* onOutcome(archiveEvent({ snapshot: "snap-6", time: "2026-11-22T07:00:01Z", failed: true })).pipe(Effect.provide(local.layer))
      yield* local.notifications.drain(1)
      const day = new Date().toISOString().slice(0, 10)
      // Act
      yield* onDigestDue({ detail: { day } }).pipe(Effect.provide(local.layer))
      // Assess
      const digest = yield* local.notifications.drain(2)
      assert.strictEqual(digest.length, 1)
      assert.include(digest[0], `${day}: 2 outcomes, 1 succeeded, 1 failed`)
      const published = yield* Effect.forEach(yield* local.reports.drain(2), (body) => Schema.decodeUnknown(PublishedReport)(body))
      assert.deepStrictEqual(published.map((event) => [event.detail.period, event.detail.total, event.detail.failures]), [["day", 2, 1]])
      assert.strictEqual(published[0]?.detail.html.key, `reports/daily/${day}/report.html`)
    }).pipe(Effect.provide(emulatorClients(emulator.endpoint)))
  )
})

/** The report-due messages the reporter sent itself, once their delay has passed. */
const drainAfterDelay = (local: { readonly queueUrl: string }) =>
  Effect.gen(function* () {
    yield* Effect.sleep("1500 millis")
    return yield* drainQueue(local.queueUrl)(2)
  })
