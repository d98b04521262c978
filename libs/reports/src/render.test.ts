import { assert, describe, it } from "@effect/vitest"
import { archiveEvent, exportEvent, replicaEvent } from "./fixtures"
import { entryOf } from "./entry"
import { summarize, toCsv, toHtml } from "./render"

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
    assert.isTrue(lines[1]?.endsWith(',"backup ""01"" not found, ""quoted"", and, commas"'))
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
