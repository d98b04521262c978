import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit } from "effect"
import {
  ArchiveCompleted,
  BackupJobStateChange,
  CopyJobStateChange,
  RecoveryPointStateChange,
  RestoreCompleted,
  SweepDue,
  commandBody,
  commandEnvelope,
  describeDecodeFailure,
  recoveryPointArnOf,
  route,
  snapshotIdFromArn,
  subscribe
} from "./index"
import { backupJobCompletedEbs, copyJobCompleted, recoveryPointCompletedEbs } from "./fixtures/aws-backup-events"

const restoreDetail = {
  schemaVersion: 1 as const,
  correlationId: "arn:aws:ec2:us-east-1::snapshot/snap-0123456789abcdef0",
  idempotencyKey: "arn:aws:ec2:us-east-1::snapshot/snap-0123456789abcdef0#archive",
  status: "restored" as const,
  resourceType: "EBS",
  backupVaultName: "archive-volume",
  snapshotId: "snap-0123456789abcdef0",
  plan: { rule: "volume", mode: "volume" as const, compression: "zstd" as const, deleteSourceAfterVerify: false },
  volumeId: "vol-0aaa",
  availabilityZone: "us-east-1a"
}

const ownedEvent = (detail: unknown) => ({
  version: "0",
  id: "e-1",
  "detail-type": "Restore Completed",
  source: "backup-actions",
  account: "123456789012",
  time: "2026-11-20T03:20:00Z",
  region: "us-east-1",
  resources: [],
  detail
})

describe("AWS Backup event contracts", () => {
  it.effect("decodes a documented Recovery Point State Change and keeps its status and recovery point", () =>
    Effect.gen(function* () {
      const event = yield* RecoveryPointStateChange.decode(recoveryPointCompletedEbs)
      assert.strictEqual(event.detail.status, "COMPLETED")
      assert.strictEqual(event.detail.resourceType, "EBS")
      assert.strictEqual(event.detail.backupVaultName, "archive-direct")
      assert.strictEqual(recoveryPointArnOf(event), "arn:aws:ec2:us-east-1::snapshot/snap-0123456789abcdef0")
    })
  )

  it.effect("decodes a Backup Job State Change whose numbers arrive as strings", () =>
    Effect.gen(function* () {
      const event = yield* BackupJobStateChange.decode(backupJobCompletedEbs)
      assert.strictEqual(event.detail.state, "COMPLETED")
      assert.strictEqual(event.detail.backupSizeInBytes, "8589934592")
    })
  )

  it.effect("decodes a Copy Job State Change with its destination recovery point", () =>
    Effect.gen(function* () {
      const event = yield* CopyJobStateChange.decode(copyJobCompleted)
      assert.strictEqual(event.detail.destinationRecoveryPointArn, "arn:aws:ec2:us-west-2::snapshot/snap-0fedcba9876543210")
    })
  )

  it.effect("rejects a recovery point event that lacks its status, naming the field", () =>
    Effect.gen(function* () {
      const { status: _status, ...detail } = recoveryPointCompletedEbs.detail
      const error = yield* Effect.flip(RecoveryPointStateChange.decode({ ...recoveryPointCompletedEbs, detail }))
      assert.isTrue(error._tag === "EventDecodeError" && error.reason.includes("status"))
    })
  )

  it("builds the EventBridge pattern from the contract, narrowed on detail fields", () => {
    assert.deepStrictEqual(RecoveryPointStateChange.pattern({ status: ["COMPLETED"], resourceType: ["EBS"] }), {
      source: ["aws.backup"],
      "detail-type": ["Recovery Point State Change"],
      detail: { status: ["COMPLETED"], resourceType: ["EBS"] }
    })
  })

  it.effect("takes the recovery point from resources[] only, as AWS Backup sends it", () =>
    Effect.gen(function* () {
      // Prepare: a recoveryPointArn in the detail, which AWS Backup never sends, and none in resources[]
      const event = yield* RecoveryPointStateChange.decode({
        ...recoveryPointCompletedEbs,
        resources: [],
        detail: { ...recoveryPointCompletedEbs.detail, recoveryPointArn: "arn:aws:ec2:us-east-1::snapshot/snap-1" }
      })
      // Act
      const arn = recoveryPointArnOf(event)
      // Assess
      assert.isUndefined(arn)
    })
  )

  it("finds the snapshot id in an EC2 snapshot ARN and nothing in other ARNs", () => {
    assert.strictEqual(snapshotIdFromArn("arn:aws:ec2:us-east-1::snapshot/snap-0123456789abcdef0"), "snap-0123456789abcdef0")
    assert.isUndefined(snapshotIdFromArn("arn:aws:ec2:us-east-1::image/ami-0123456789abcdef0"))
  })
})

describe("owned event contracts", () => {
  it.effect("round-trips a Restore Completed detail through encode and decode", () =>
    Effect.gen(function* () {
      const encoded = yield* RestoreCompleted.encodeDetail(restoreDetail)
      const event = yield* RestoreCompleted.decode(ownedEvent(encoded))
      assert.deepStrictEqual(event.detail, restoreDetail)
    })
  )

  it.effect("reads a direct-mode hand-off, for which nothing was restored, beside a restore published before hand-offs existed", () =>
    Effect.gen(function* () {
      // Prepare: a restore as every build has published it, and the hand-off of a direct-mode plan
      const handOff = {
        schemaVersion: 1 as const,
        correlationId: restoreDetail.correlationId,
        idempotencyKey: `${restoreDetail.correlationId}#restore:direct`,
        status: "not-needed" as const,
        resourceType: "EBS",
        backupVaultName: "Default",
        snapshotId: restoreDetail.snapshotId,
        plan: { rule: "ebs-direct", mode: "direct" as const, compression: "zstd" as const, deleteSourceAfterVerify: false }
      }
      // Act
      const archived = yield* RestoreCompleted.decode(ownedEvent(restoreDetail))
      const handed = yield* RestoreCompleted.decode(ownedEvent(yield* RestoreCompleted.encodeDetail(handOff)))
      // Assess
      assert.deepStrictEqual(archived.detail, restoreDetail)
      assert.deepStrictEqual(handed.detail, handOff)
    })
  )

  it.effect("refuses an owned event of a schema version this build does not read", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(RestoreCompleted.decode(ownedEvent({ ...restoreDetail, schemaVersion: 2 })))
      assert.strictEqual(error._tag, "UnsupportedSchemaVersion")
    })
  )

  it.effect("refuses to publish a detail that breaks its schema", () =>
    Effect.gen(function* () {
      const broken = { ...restoreDetail, status: "maybe" } as unknown as typeof restoreDetail
      const error = yield* Effect.flip(RestoreCompleted.encodeDetail(broken))
      assert.strictEqual(error._tag, "EventDecodeError")
    })
  )
})

describe("commands", () => {
  it.effect("sends a command as the event its contract reads, with the detail as given and a fresh id", () =>
    Effect.gen(function* () {
      // Prepare
      const nowMs = Date.parse("2026-11-20T03:20:00Z")
      // Act
      const bodies = [commandBody(SweepDue, { olderThanHours: 3 }, { region: "eu-west-1", nowMs }), commandBody(SweepDue, { olderThanHours: 3 }, { region: "eu-west-1", nowMs })]
      const events = yield* Effect.forEach(bodies, (body) => SweepDue.decode(JSON.parse(body)))
      // Assess
      assert.deepStrictEqual(
        events.map((event) => [event.source, event["detail-type"], event.time, event.region, event.resources, event.detail]),
        [
          ["backup-actions.commands", "Sweep Due", "2026-11-20T03:20:00.000Z", "eu-west-1", [], { olderThanHours: 3 }],
          ["backup-actions.commands", "Sweep Due", "2026-11-20T03:20:00.000Z", "eu-west-1", [], { olderThanHours: 3 }]
        ]
      )
      assert.notStrictEqual(events[0]?.id, events[1]?.id)
    })
  )

  it("builds every command envelope the same way, whoever stamps it", () => {
    // Act
    const envelope = commandEnvelope(SweepDue, { olderThanHours: 6 }, { id: "<execution id>", time: "<scheduled time>", region: "eu-west-1" })
    // Assess
    assert.deepStrictEqual(envelope, {
      version: "0",
      id: "<execution id>",
      "detail-type": "Sweep Due",
      source: "backup-actions.commands",
      time: "<scheduled time>",
      region: "eu-west-1",
      resources: [],
      detail: { olderThanHours: 6 }
    })
  })
})

describe("routing an SQS body to its handler", () => {
  const seen: Array<string> = []
  const subscriptions = [
    subscribe(RecoveryPointStateChange, (event) => Effect.sync(() => seen.push(event.detail.status))),
    subscribe(ArchiveCompleted, (event) => Effect.sync(() => seen.push(event.detail.status)))
  ]

  it.effect("runs the handler of the matching contract with the typed event", () =>
    Effect.gen(function* () {
      const run = yield* route(JSON.stringify(recoveryPointCompletedEbs), subscriptions)
      yield* run
      assert.deepStrictEqual(seen, ["COMPLETED"])
    })
  )

  it.effect("fails malformed JSON, unknown types and unsupported versions with a reason for the DLQ", () =>
    Effect.gen(function* () {
      const reasons = yield* Effect.forEach(
        [
          "{not json",
          JSON.stringify({ ...recoveryPointCompletedEbs, "detail-type": "Backup Vault State Change" }),
          JSON.stringify({ ...ownedEvent({ ...restoreDetail, schemaVersion: 9 }), "detail-type": "Archive Completed" })
        ],
        (body) => Effect.flip(route(body, subscriptions)).pipe(Effect.map(describeDecodeFailure))
      )
      assert.match(reasons[0] ?? "", /^malformed event: body is not JSON/)
      assert.strictEqual(reasons[1], 'unknown event type: source "aws.backup", detail-type "Backup Vault State Change"')
      assert.match(reasons[2] ?? "", /^unsupported schema version 9 of "Archive Completed"/)
    })
  )

  it.effect("does not run any handler for a body it cannot decode", () =>
    Effect.gen(function* () {
      const before = seen.length
      const exit = yield* Effect.exit(route(JSON.stringify({ source: "aws.backup" }), subscriptions))
      assert.isTrue(Exit.isFailure(exit))
      assert.strictEqual(seen.length, before)
    })
  )
})
