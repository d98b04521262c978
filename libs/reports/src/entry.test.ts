import { assert, describe, it } from "@effect/vitest"
import { Schema } from "effect"
import { archiveEvent, exportEvent, replicaEvent } from "./fixtures"
import { ReportEntry, entryOf, type OutcomeEvent } from "./entry"

const VOLUME = "arn:aws:ec2:us-east-1:123456789012:volume/vol-0protected00001"
const TABLE = "arn:aws:dynamodb:us-east-1:123456789012:table/orders"
const TIME = "2026-11-22T10:00:00Z"

/** A Restore Completed for a direct-mode plan, naming the protected resource when given one. */
const restoreEvent = (resourceArn?: string): OutcomeEvent => {
  const arn = "arn:aws:ec2:us-east-1::snapshot/snap-0restore"
  return {
    version: "0",
    region: "us-east-1",
    resources: [arn],
    source: "backup-actions",
    id: "restore-snap-0restore",
    time: TIME,
    "detail-type": "Restore Completed",
    detail: {
      schemaVersion: 1,
      correlationId: arn,
      idempotencyKey: `${arn}#restore:direct`,
      status: "not-needed",
      resourceType: "EBS",
      ...(resourceArn === undefined ? {} : { resourceArn }),
      backupVaultName: "Default",
      snapshotId: "snap-0restore",
      plan: { rule: "direct", mode: "direct", compression: "zstd", deleteSourceAfterVerify: false }
    }
  }
}

/** An outcome event as a build that names the protected resource publishes it. */
const naming = (event: OutcomeEvent, resourceArn: string): OutcomeEvent => {
  switch (event["detail-type"]) {
    case "Restore Completed":
      return { ...event, detail: { ...event.detail, resourceArn } }
    case "Archive Completed":
      return { ...event, detail: { ...event.detail, resourceArn } }
    case "Export Completed":
      return { ...event, detail: { ...event.detail, resourceArn } }
    case "Replica Completed":
      return event
  }
}

describe("a report row's protected resource", () => {
  it("is the resource that a restore's, an archive's and an export's event names, whatever the outcome", () => {
    // Prepare
    const events = [
      restoreEvent(VOLUME),
      naming(archiveEvent({ snapshot: "snap-a", time: TIME }), VOLUME),
      naming(archiveEvent({ snapshot: "snap-b", time: TIME, failed: true }), VOLUME),
      naming(exportEvent({ table: "orders", time: TIME }), TABLE),
      naming(exportEvent({ table: "orders", time: TIME, failed: true }), TABLE)
    ]
    // Act
    const entries = events.map(entryOf)
    // Assess
    assert.deepStrictEqual(
      entries.map((entry) => [entry.kind, entry.status, entry.resourceArn]),
      [
        ["restore", "succeeded", VOLUME],
        ["archive", "succeeded", VOLUME],
        ["archive", "failed", VOLUME],
        ["export", "succeeded", TABLE],
        ["export", "failed", TABLE]
      ]
    )
  })

  it("is left out, key and all, when the event comes from a build that did not name it", () => {
    // Prepare: events as earlier builds published them, and a replica, which never names it
    const events = [
      restoreEvent(),
      archiveEvent({ snapshot: "snap-a", time: TIME }),
      exportEvent({ table: "orders", time: TIME }),
      replicaEvent({ snapshot: "snap-a", time: TIME, ageSeconds: 60 })
    ]
    // Act
    const entries = events.map(entryOf)
    // Assess
    assert.deepStrictEqual(
      entries.map((entry) => Object.hasOwn(entry, "resourceArn")),
      [false, false, false, false]
    )
  })

  it("survives being stored and read back", () => {
    // Prepare
    const entry = entryOf(naming(archiveEvent({ snapshot: "snap-a", time: TIME }), VOLUME))
    // Act
    const stored = Schema.decodeUnknownSync(ReportEntry)(JSON.parse(JSON.stringify(Schema.encodeSync(ReportEntry)(entry))))
    // Assess
    assert.strictEqual(stored.resourceArn, VOLUME)
  })
})
