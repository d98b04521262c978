import { assert, describe, it } from "@effect/vitest"
import { Either } from "effect"
import type { DrillRecord } from "@backup-actions/ledger"
import type { ReportEntry } from "@backup-actions/reports"
import { drillTargetOf, dueDrills, newestArtifacts } from "./plan"
import { drillTable } from "./table"

const VOLUME = "arn:aws:ec2:us-east-1:123456789012:volume/vol-1"
const TABLE = "arn:aws:dynamodb:us-east-1:123456789012:table/orders"
const DAY_MS = 86_400_000

const entry = (overrides: Partial<ReportEntry>): ReportEntry => ({
  idempotencyKey: `${overrides.recoveryPoint ?? "rp"}#archive:direct`,
  recoveryPoint: "arn:aws:ec2:us-east-1::snapshot/snap-1",
  kind: "archive",
  action: "archive:direct",
  status: "succeeded",
  time: "2026-12-01T10:00:00.000Z",
  ...overrides
})

const drill = (overrides: Partial<DrillRecord>): DrillRecord => ({
  resourceArn: VOLUME,
  recoveryPoint: "arn:aws:ec2:us-east-1::snapshot/snap-1",
  artifact: "s3://bucket/archives/ebs/snap-1/direct/disk.img.zst",
  target: "snapshot",
  result: "passed",
  startedAt: Date.parse("2026-12-01T12:00:00Z"),
  rtoSeconds: 42.5,
  scratchDeleted: true,
  ...overrides
})

describe("choosing what a restore drill restores", () => {
  it("tells each artifact's restore by its key, and names the ones no restore reads", () => {
    // Act
    const target = (key: string) => drillTargetOf({ bucket: "b", key })
    // Assess
    assert.deepStrictEqual(Either.getOrUndefined(target("archives/ebs/snap-1/direct/disk.img.zst")), "snapshot")
    assert.deepStrictEqual(Either.getOrUndefined(target("archives/ebs/snap-1/volume/files.tar.gz")), "directory")
    assert.deepStrictEqual(Either.getOrUndefined(target("exports/dynamodb/orders/backup-1/data.parquet")), "table")
    assert.deepStrictEqual(Either.getOrUndefined(target("archives/rds/snap/app.sql.zst")), "database")
    assert.deepStrictEqual(Either.getOrUndefined(target("archives/ami/ami-0abc/image.json")), "image")
    const rds = target("exports/rds/export-1/part-00000.json")
    assert.match(Either.isLeft(rds) ? rds.left : "(a target)", /no restore reads part-00000\.json/)
  })

  it("keeps the newest succeeded artifact of each resource, and names a resource by its recovery point when the outcome did not say", () => {
    // Prepare
    const entries = [
      entry({ resourceArn: VOLUME, time: "2026-12-01T10:00:00Z", location: "s3://b/archives/ebs/snap-1/direct/disk.img.zst" }),
      entry({ resourceArn: VOLUME, time: "2026-12-02T10:00:00Z", recoveryPoint: "arn:aws:ec2:us-east-1::snapshot/snap-2", location: "s3://b/archives/ebs/snap-2/direct/disk.img.zst" }),
      entry({ resourceArn: VOLUME, time: "2026-12-03T10:00:00Z", status: "failed", location: "s3://b/archives/ebs/snap-3/direct/disk.img.zst" }),
      entry({ kind: "export", action: "export:parquet", resourceArn: TABLE, location: "s3://b/exports/dynamodb/orders/1/data.parquet" }),
      entry({ kind: "replicate", action: "replicate", resourceArn: VOLUME, time: "2026-12-04T10:00:00Z", location: "arn:aws:ec2:eu-west-1::snapshot/snap-9" }),
      entry({ recoveryPoint: "arn:aws:ec2:us-east-1::snapshot/snap-old", location: "s3://b/archives/ebs/snap-old/direct/disk.img.zst" })
    ]
    // Act
    const newest = newestArtifacts(entries)
    // Assess
    assert.deepStrictEqual(
      newest.map((candidate) => [candidate.resourceArn, candidate.location.key]),
      [
        ["arn:aws:dynamodb:us-east-1:123456789012:table/orders", "exports/dynamodb/orders/1/data.parquet"],
        ["arn:aws:ec2:us-east-1::snapshot/snap-old", "archives/ebs/snap-old/direct/disk.img.zst"],
        [VOLUME, "archives/ebs/snap-2/direct/disk.img.zst"]
      ]
    )
  })

  it("drills a resource never drilled, one whose last drill is a period old, and one with a newer artifact, and no other", () => {
    // Prepare
    const now = Date.parse("2026-12-08T12:00:00Z")
    const candidate = (resourceArn: string, key: string) => ({ resourceArn, recoveryPoint: "rp", location: { bucket: "bucket", key }, time: "2026-12-01T00:00:00Z" })
    const sameArtifact = "archives/ebs/snap-1/direct/disk.img.zst"
    const candidates = [
      candidate("never", sameArtifact),
      candidate("week-old", sameArtifact),
      candidate("recent", sameArtifact),
      candidate("recent-but-newer-artifact", "archives/ebs/snap-2/direct/disk.img.zst")
    ]
    const latest = [
      drill({ resourceArn: "week-old", startedAt: now - 7 * DAY_MS }),
      drill({ resourceArn: "recent", startedAt: now - DAY_MS, result: "failed" }),
      drill({ resourceArn: "recent-but-newer-artifact", startedAt: now - DAY_MS })
    ]
    // Act
    const due = dueDrills(candidates, latest, 7 * DAY_MS, now)
    // Assess
    assert.deepStrictEqual(
      due.map((chosen) => chosen.resourceArn),
      ["never", "week-old", "recent-but-newer-artifact"]
    )
  })
})

describe("the drill table", () => {
  it("shows failed drills first with their reasons, the RTO of each passed one, and scratch left behind", () => {
    // Prepare
    const drills = [
      drill({}),
      drill({ resourceArn: TABLE, target: "table", result: "failed", rtoSeconds: undefined, reason: "item count differs", scratchDeleted: false, artifact: "s3://b/exports/x/data.parquet" })
    ]
    // Act
    const lines = drillTable(drills).split("\n")
    // Assess
    assert.match(lines[0] ?? "", /^source\s+last drill\s+into\s+result\s+RTO\s+artifact$/)
    assert.match(lines[1] ?? "", new RegExp(`^${TABLE}\\s+2026-12-01T12:00:00Z\\s+table\\s+failed \\(scratch left\\)\\s+-\\s+s3://b/exports/x/data\\.parquet$`))
    assert.match(lines[2] ?? "", /vol-1\s+2026-12-01T12:00:00Z\s+snapshot\s+passed\s+43 s\s+s3:\/\/bucket\/archives/)
    assert.strictEqual(lines.at(-1), `${TABLE}: item count differs`)
    assert.strictEqual(drillTable([]), "No restore drill recorded.")
  })
})
