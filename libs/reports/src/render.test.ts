import { assert, describe, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import type { DrillRecord } from "@backup-actions/ledger"
import { archiveEvent, backupJobEvent, exportEvent, replicaEvent } from "./fixtures"
import { entryOf } from "./entry"
import { jobEntryOf } from "./jobs"
import { ReportSummary, summarize, toCsv, toHtml, toJson } from "./render"
import { formatRto } from "./drills"

const generatedAtMs = Date.parse("2026-11-22T12:00:00Z")

describe("building a report from outcomes", () => {
  it("adds up outcomes per action, with failures and bytes", () => {
    // Prepare
    const entries = [
      archiveEvent({ snapshot: "snap-a", time: "2026-11-22T10:00:00Z", bytes: 1_000 }),
      archiveEvent({ snapshot: "snap-b", time: "2026-11-22T10:05:00Z", failed: true }),
      exportEvent({ table: "orders", time: "2026-11-22T10:01:00Z" })
    ].map(entryOf)
    // Act
    const summary = summarize({ period: "run", title: "run", generatedAtMs, entries })
    // Assess
    assert.strictEqual(summary.total, 3)
    assert.strictEqual(summary.succeeded, 2)
    assert.strictEqual(summary.failed, 1)
    assert.strictEqual(summary.bytesRead, 1_000 + 64 * 1024 * 1024)
    assert.strictEqual(summary.bytesStored, 250 + 4_096)
    assert.deepStrictEqual(
      summary.actions.map((action) => [action.action, action.total, action.failed]),
      [
        ["archive:direct", 2, 1],
        ["export:parquet", 1, 0]
      ]
    )
    assert.strictEqual(summary.failures[0]?.recoveryPoint, "arn:aws:ec2:us-east-1::snapshot/snap-b")
    assert.deepStrictEqual(
      summary.entries.map((entry) => entry.time),
      ["2026-11-22T10:00:00Z", "2026-11-22T10:01:00Z", "2026-11-22T10:05:00Z"]
    )
  })

  it("gives the newest replica per source, aged to the time of the report", () => {
    // Prepare: two replicas of one source; the later one is the newest
    const entries = [
      replicaEvent({ snapshot: "snap-a", time: "2026-11-22T06:00:00Z", ageSeconds: 600 }),
      replicaEvent({ snapshot: "snap-a", time: "2026-11-22T11:00:00Z", ageSeconds: 300 })
    ].map((event, index) => ({ ...entryOf(event), idempotencyKey: `key-${index}` }))
    // Act
    const summary = summarize({ period: "day", title: "day", generatedAtMs, entries })
    // Assess: 300 s old when it finished, an hour before the report
    assert.deepStrictEqual(
      summary.newestReplicas.map((replica) => [replica.source, replica.region, replica.ageSeconds]),
      [["arn:aws:ec2:us-east-1::snapshot/snap-a", "eu-west-1", 3_900]]
    )
  })

  it("writes CSV that quotes commas and quotes in a reason", () => {
    // Prepare
    const summary = summarize({ period: "run", title: "run", generatedAtMs, entries: [entryOf(exportEvent({ table: "t", time: "2026-11-22T10:00:00Z", failed: true }))] })
    // Act
    const lines = toCsv(summary).trimEnd().split("\r\n")
    // Assess
    assert.strictEqual(lines.length, 2)
    assert.isTrue(lines[0]?.startsWith("time,recovery_point,kind,action,status"))
    assert.isTrue(lines[1]?.endsWith(',"backup ""01"" not found, ""quoted"", and, commas",,,,,,'))
  })

  it("writes an HTML page that escapes what it shows and charts bytes and durations", () => {
    // Prepare
    const event = archiveEvent({ snapshot: "snap-<script>", time: "2026-11-22T10:00:00Z" })
    const summary = summarize({ period: "run", title: "run <1>", generatedAtMs, entries: [entryOf(event)] })
    // Act
    const html = toHtml(summary)
    // Assess
    assert.isFalse(html.includes("<script>"))
    assert.isTrue(html.includes("snap-&lt;script&gt;"))
    assert.isTrue(html.includes("<title>run &lt;1&gt;</title>"))
    assert.isTrue(html.includes('aria-label="Bytes stored per artifact"'))
    assert.isTrue(html.includes('aria-label="Duration per step"'))
    assert.isTrue(html.includes("No failures."))
  })
})

describe("the AWS Backup jobs section", () => {
  const jobs = [
    backupJobEvent({ kind: "backup", jobId: "b-1", state: "COMPLETED", time: "2026-11-22T10:00:00Z" }),
    backupJobEvent({ kind: "backup", jobId: "b-2", state: "FAILED", time: "2026-11-22T10:01:00Z", statusMessage: '"Backup job failed because the <vault> is gone, sadly."' }),
    backupJobEvent({ kind: "copy", jobId: "c-1", state: "PARTIAL", time: "2026-11-22T10:02:00Z", statusMessage: "Some copies failed" }),
    backupJobEvent({ kind: "restore", jobId: "r-1", state: "COMPLETED", time: "2026-11-22T10:03:00Z" }),
    backupJobEvent({ kind: "backup", jobId: "b-3", state: "COMPLETED", time: "2026-11-22T09:59:00Z" })
  ].map(jobEntryOf)

  it("counts jobs per kind and state, completed first, and lists every failure with its reason", () => {
    // Act
    const summary = summarize({ period: "run", title: "run", generatedAtMs, entries: [], jobs })
    // Assess
    assert.deepStrictEqual(
      summary.awsBackupJobs?.counts.map((count) => `${count.kind} ${count.state} ${count.count}`),
      ["backup COMPLETED 2", "backup FAILED 1", "copy PARTIAL 1", "restore COMPLETED 1"]
    )
    assert.deepStrictEqual(
      summary.awsBackupJobs?.failures.map((failure) => [failure.jobId, failure.state, failure.reason]),
      [
        ["b-2", "FAILED", "Backup job failed because the <vault> is gone, sadly."],
        ["c-1", "PARTIAL", "Some copies failed"]
      ]
    )
    assert.deepStrictEqual([summary.awsBackupJobs?.total, summary.awsBackupJobs?.failed, summary.total, summary.failed], [5, 2, 0, 0])
  })

  it.effect("still decodes a report written before the section existed, and round-trips one with it", () =>
    Effect.gen(function* () {
      // Prepare
      const withJobs = summarize({ period: "day", title: "day", generatedAtMs, entries: [entryOf(archiveEvent({ snapshot: "snap-a", time: "2026-11-22T10:00:00Z" }))], jobs })
      const { awsBackupJobs: _section, ...older } = JSON.parse(toJson(withJobs))
      // Act
      const decodedOld = yield* Schema.decodeUnknown(ReportSummary)(older)
      const decodedNew = yield* Schema.decode(Schema.parseJson(ReportSummary))(toJson(withJobs))
      // Assess
      assert.isUndefined(decodedOld.awsBackupJobs)
      assert.strictEqual(decodedOld.total, 1)
      assert.strictEqual(toJson(decodedNew), toJson(withJobs))
    })
  )

  it("adds one CSV row per job after the outcomes, with the job's id, state, vault and resource", () => {
    // Prepare
    const summary = summarize({ period: "run", title: "run", generatedAtMs, entries: [entryOf(exportEvent({ table: "t", time: "2026-11-22T10:00:00Z" }))], jobs })
    // Act
    const lines = toCsv(summary).trimEnd().split("\r\n")
    // Assess
    assert.strictEqual(lines.length, 1 + 1 + 5)
    assert.isTrue(lines[0]?.includes(",reason,job_id,job_state,backup_vault,resource_arn,"))
    assert.isTrue(lines[1]?.includes(",export,export:parquet,succeeded,"))
    assert.strictEqual(
      lines[4],
      "2026-11-22T10:01:00Z,,aws-backup,backup-job,failed,,,,,,,,\"Backup job failed because the <vault> is gone, sadly.\",b-2,FAILED,vault-b-2,arn:aws:ec2:us-east-1:123456789012:volume/vol-b-2,,"
    )
    assert.isTrue(lines.every((line) => line.split(",").length >= 17))
  })

  it("shows the counts and the failures on the HTML page, escaped, and says when no job ended", () => {
    // Act
    const html = toHtml(summarize({ period: "run", title: "run", generatedAtMs, entries: [], jobs }))
    const empty = toHtml(summarize({ period: "run", title: "run", generatedAtMs, entries: [], jobs: [] }))
    const older = toHtml(summarize({ period: "run", title: "run", generatedAtMs, entries: [] }))
    // Assess
    assert.include(html, '<section id="aws-backup-jobs" class="jobs"><h2>AWS Backup jobs</h2>')
    assert.include(html, '<tr data-kind="backup"><td>backup</td><td data-state="COMPLETED">2</td><td data-state="PARTIAL">0</td><td data-state="FAILED">1</td><td data-state="total">3</td></tr>')
    assert.include(html, "the &lt;vault&gt; is gone, sadly.")
    assert.isFalse(html.includes("<vault>"))
    assert.include(empty, "No AWS Backup job ended in this report.")
    assert.include(empty, "No AWS Backup job failed.")
    assert.isFalse(older.includes("aws-backup-jobs"))
  })
})

describe("the restore drills section", () => {
  const drill = (resource: string, fields: Partial<DrillRecord> = {}): DrillRecord => ({
    resourceArn: `arn:aws:ec2:us-east-1:123456789012:volume/${resource}`,
    recoveryPoint: `arn:aws:ec2:us-east-1::snapshot/snap-${resource}`,
    artifact: `s3://artifacts/archives/${resource}.tar.zst`,
    target: "snapshot",
    result: "passed",
    startedAt: Date.parse("2026-11-22T03:00:00Z"),
    rtoSeconds: 42,
    scratchDeleted: true,
    ...fields
  })
  const drills = [
    drill("vol-b"),
    drill("vol-c", { result: "failed", reason: "checksum of <part 3> differs", rtoSeconds: undefined, scratchDeleted: false, startedAt: Date.parse("2026-11-22T04:00:00Z") }),
    drill("vol-a", { target: "directory", rtoSeconds: 185 }),
    drill("vol-d", { result: "skipped", reason: "no EBS direct APIs in this region", rtoSeconds: undefined })
  ]

  it("has one row per resource, failed drills first and then by resource, each with its start as an ISO time", () => {
    // Prepare: an older drill of vol-b as well, which its newer one replaces
    const older = drill("vol-b", { result: "failed", startedAt: Date.parse("2026-11-21T03:00:00Z") })
    // Act
    const summary = summarize({ period: "run", title: "run", generatedAtMs, entries: [], drills: [older, ...drills] })
    // Assess
    assert.deepStrictEqual(
      summary.drills?.map((row) => [row.resourceArn.slice(row.resourceArn.lastIndexOf("/") + 1), row.result, row.when, row.rtoSeconds, row.scratchDeleted]),
      [
        ["vol-c", "failed", "2026-11-22T04:00:00.000Z", undefined, false],
        ["vol-a", "passed", "2026-11-22T03:00:00.000Z", 185, true],
        ["vol-b", "passed", "2026-11-22T03:00:00.000Z", 42, true],
        ["vol-d", "skipped", "2026-11-22T03:00:00.000Z", undefined, true]
      ]
    )
    assert.strictEqual(summary.drills?.[0]?.artifact, "s3://artifacts/archives/vol-c.tar.zst")
  })

  it.effect("writes the rows in the JSON, and still decodes a report written without them", () =>
    Effect.gen(function* () {
      // Prepare
      const summary = summarize({ period: "day", title: "day", generatedAtMs, entries: [], drills })
      const { drills: _section, ...older } = JSON.parse(toJson(summary))
      // Act
      const decoded = yield* Schema.decode(Schema.parseJson(ReportSummary))(toJson(summary))
      const decodedOld = yield* Schema.decodeUnknown(ReportSummary)(older)
      // Assess
      assert.deepStrictEqual(decoded.drills, summary.drills)
      assert.deepStrictEqual(JSON.parse(toJson(summary)).drills[0], {
        resourceArn: "arn:aws:ec2:us-east-1:123456789012:volume/vol-c",
        artifact: "s3://artifacts/archives/vol-c.tar.zst",
        target: "snapshot",
        result: "failed",
        when: "2026-11-22T04:00:00.000Z",
        reason: "checksum of <part 3> differs",
        scratchDeleted: false
      })
      assert.isUndefined(decodedOld.drills)
    })
  )

  it("leaves the section out when no drill is given", () => {
    // Act
    const none = summarize({ period: "run", title: "run", generatedAtMs, entries: [] })
    const empty = summarize({ period: "run", title: "run", generatedAtMs, entries: [], drills: [] })
    // Assess
    assert.isFalse("drills" in none)
    assert.isFalse("drills" in empty)
    assert.isFalse(toHtml(empty).includes("Restore drills"))
    assert.strictEqual(toCsv(empty).trimEnd().split("\r\n").length, 1)
  })

  it("adds one CSV row per drill after the outcomes, with its result, artifact, resource, RTO and scratch", () => {
    // Act
    const lines = toCsv(summarize({ period: "run", title: "run", generatedAtMs, entries: [], drills })).trimEnd().split("\r\n")
    // Assess
    assert.strictEqual(lines.length, 1 + 4)
    assert.isTrue(lines[0]?.endsWith(",resource_arn,rto_seconds,scratch_deleted"))
    assert.strictEqual(
      lines[1],
      "2026-11-22T04:00:00.000Z,,drill,drill:snapshot,failed,,,,s3://artifacts/archives/vol-c.tar.zst,,,,checksum of <part 3> differs,,,,arn:aws:ec2:us-east-1:123456789012:volume/vol-c,,false"
    )
    assert.strictEqual(
      lines[2],
      "2026-11-22T03:00:00.000Z,,drill,drill:directory,passed,,,,s3://artifacts/archives/vol-a.tar.zst,,,,,,,,arn:aws:ec2:us-east-1:123456789012:volume/vol-a,185,true"
    )
  })

  it("shows a Restore drills table on the HTML page, the failed drill marked failed, its RTO readable and left scratch flagged", () => {
    // Act
    const html = toHtml(summarize({ period: "run", title: "run", generatedAtMs, entries: [], drills }))
    // Assess
    assert.include(html, '<section id="restore-drills" class="drills"><h2>Restore drills</h2>')
    assert.include(
      html,
      '<tr class="failed" data-result="failed"><td>arn:aws:ec2:us-east-1:123456789012:volume/vol-c</td><td>2026-11-22T04:00:00.000Z</td><td>failed</td><td></td><td>snapshot</td>' +
        '<td>s3://artifacts/archives/vol-c.tar.zst</td><td class="flag" data-scratch="left">not deleted</td><td>checksum of &lt;part 3&gt; differs</td></tr>'
    )
    assert.include(html, "<td>passed</td><td>3 min 5 s</td><td>directory</td>")
    assert.include(html, "<td>passed</td><td>42 s</td><td>snapshot</td>")
    assert.include(html, '<tr class="skipped" data-result="skipped">')
    assert.include(html, '<div class="card" data-metric="restore drills failed"><div class="number">1</div>')
    assert.isFalse(html.includes("<part 3>"))
  })

  it("gives an RTO to the second up to an hour, then to the minute", () => {
    // Assess
    assert.deepStrictEqual([0, 42, 59.6, 60, 185, 3_599, 3_600, 3_725].map(formatRto), ["0 s", "42 s", "1 min", "1 min", "3 min 5 s", "59 min 59 s", "1 h", "1 h 2 min"])
  })
})
