import { assert, describe, it } from "@effect/vitest"
import {
  CopySnapshotCommand,
  DeleteSnapshotCommand,
  DescribeSnapshotsCommand,
  ModifySnapshotAttributeCommand,
  type Snapshot
} from "@aws-sdk/client-ec2"
import { DescribeKeyCommand } from "@aws-sdk/client-kms"
import { Effect, Fiber, TestClock } from "effect"
import { replicateEbsSnapshot } from "./ebs"
import { DESTINATION_ACCOUNT, DESTINATION_KEY_ARN, DESTINATION_REGION, SOURCE_REGION, job, mockAccounts, mockDestinationCopies } from "./test-accounts"
import { MANAGED_BY_TAG, SOURCE_ARN_TAG, SOURCE_RESOURCE_TAG } from "./tags"

const SOURCE_ID = "snap-0source0000000001"
const sourceSnapshot: Snapshot = { SnapshotId: SOURCE_ID, State: "completed", VolumeSize: 8, StartTime: new Date("2026-01-01T00:00:00Z") }

describe("replicating an EBS snapshot", () => {
  it.effect("shares the source, copies it encrypted with the destination's key and tags, then takes the share back", () =>
    Effect.gen(function* () {
      // Prepare
      const mocks = mockAccounts()
      mocks.sourceEc2.on(DescribeSnapshotsCommand).resolves({ Snapshots: [sourceSnapshot] })
      mocks.sourceEc2.on(ModifySnapshotAttributeCommand).resolves({})
      mockDestinationCopies(mocks)
      // Act
      const result = yield* replicateEbsSnapshot(job(SOURCE_ID)).pipe(Effect.provide(mocks.layer))
      // Assess: the share, exactly as AWS takes it, added then removed
      assert.deepStrictEqual(
        mocks.sourceEc2.commandCalls(ModifySnapshotAttributeCommand).map((call) => call.args[0].input),
        [
          { SnapshotId: SOURCE_ID, Attribute: "createVolumePermission", OperationType: "add", UserIds: [DESTINATION_ACCOUNT] },
          { SnapshotId: SOURCE_ID, Attribute: "createVolumePermission", OperationType: "remove", UserIds: [DESTINATION_ACCOUNT] }
        ]
      )
      // Assess: the copy
      const copy = mocks.destinationEc2.commandCalls(CopySnapshotCommand).map((call) => call.args[0].input)
      assert.strictEqual(copy.length, 1)
      assert.strictEqual(copy[0]?.SourceRegion, SOURCE_REGION)
      assert.strictEqual(copy[0]?.SourceSnapshotId, SOURCE_ID)
      assert.strictEqual(copy[0]?.Encrypted, true)
      assert.strictEqual(copy[0]?.KmsKeyId, DESTINATION_KEY_ARN)
      const tags = Object.fromEntries((copy[0]?.TagSpecifications?.[0]?.Tags ?? []).map((tag) => [tag.Key, tag.Value]))
      assert.strictEqual(copy[0]?.TagSpecifications?.[0]?.ResourceType, "snapshot")
      assert.strictEqual(tags[MANAGED_BY_TAG], "sharer")
      assert.strictEqual(tags[SOURCE_ARN_TAG], job(SOURCE_ID).recoveryPointArn)
      assert.strictEqual(tags[SOURCE_RESOURCE_TAG], job(SOURCE_ID).resourceArn)
      // Assess: the alias was resolved in the destination, and the outcome names the key ARN
      assert.deepStrictEqual(mocks.destinationKms.commandCalls(DescribeKeyCommand).map((call) => call.args[0].input), [{ KeyId: "alias/dr-replicas" }])
      assert.strictEqual(result._tag, "Succeeded")
      assert.strictEqual(result.outcome.kmsKeyId, DESTINATION_KEY_ARN)
      assert.strictEqual(result.outcome.replicaArn, `arn:aws:ec2:${DESTINATION_REGION}::snapshot/snap-0copy000000000001`)
    })
  )

  it.effect("waits for the copy on a growing backoff until it is completed", () =>
    Effect.gen(function* () {
      // Prepare: a copy that answers "pending" three times
      const mocks = mockAccounts()
      mocks.sourceEc2.on(DescribeSnapshotsCommand).resolves({ Snapshots: [sourceSnapshot] })
      mocks.sourceEc2.on(ModifySnapshotAttributeCommand).resolves({})
      mockDestinationCopies(mocks, { pendingPolls: 3 })
      const polls = () => mocks.destinationEc2.commandCalls(DescribeSnapshotsCommand, { SnapshotIds: ["snap-0copy000000000001"] }).length
      // Act
      const fiber = yield* Effect.fork(replicateEbsSnapshot(job(SOURCE_ID)).pipe(Effect.provide(mocks.layer)))
      yield* Effect.promise(() => new Promise((resolve) => setImmediate(resolve)))
      const before = polls()
      yield* TestClock.adjust("3 seconds")
      const tooEarly = polls()
      yield* TestClock.adjust("10 minutes")
      const result = yield* Fiber.join(fiber)
      // Assess: one poll at once, none before the first delay, then until completed
      assert.strictEqual(before, 1)
      assert.strictEqual(tooEarly, 1)
      assert.strictEqual(polls(), 4)
      assert.strictEqual(result._tag, "Succeeded")
    })
  )

  it.effect("fails with the fix, and copies nothing, when the source is on the AWS managed key", () =>
    Effect.gen(function* () {
      // Prepare
      const mocks = mockAccounts()
      const sourceKey = `arn:aws:kms:${SOURCE_REGION}:111111111111:key/aws-ebs`
      mocks.sourceEc2.on(DescribeSnapshotsCommand).resolves({ Snapshots: [{ ...sourceSnapshot, Encrypted: true, KmsKeyId: sourceKey }] })
      mocks.sourceKms.on(DescribeKeyCommand, { KeyId: sourceKey }).resolves({ KeyMetadata: { KeyId: "aws-ebs", Arn: sourceKey, KeyManager: "AWS" } })
      const copies = mockDestinationCopies(mocks)
      // Act
      const result = yield* replicateEbsSnapshot(job(SOURCE_ID)).pipe(Effect.provide(mocks.layer))
      // Assess
      assert.strictEqual(result._tag, "Failed")
      assert.strictEqual(result.outcome.status, "failed")
      assert.match(result.outcome.reason ?? "", /AWS managed key aws\/ebs, which can't be shared with account 222222222222; fix: /)
      assert.strictEqual(copies.copiesMade(), 0)
      assert.strictEqual(mocks.sourceEc2.commandCalls(ModifySnapshotAttributeCommand).length, 0)
    })
  )

  it.effect("refuses an AWS managed destination key", () =>
    Effect.gen(function* () {
      // Prepare
      const mocks = mockAccounts()
      mocks.sourceEc2.on(DescribeSnapshotsCommand).resolves({ Snapshots: [sourceSnapshot] })
      mocks.destinationKms.on(DescribeKeyCommand).resolves({ KeyMetadata: { KeyId: "k", Arn: DESTINATION_KEY_ARN, KeyManager: "AWS", KeyState: "Enabled" } })
      const copies = mockDestinationCopies(mocks)
      // Act
      const result = yield* replicateEbsSnapshot(job(SOURCE_ID)).pipe(Effect.provide(mocks.layer))
      // Assess
      assert.strictEqual(result._tag, "Failed")
      assert.match(result.outcome.reason ?? "", /is AWS managed; name a customer managed key of the destination/)
      assert.strictEqual(copies.copiesMade(), 0)
    })
  )

  it.effect("waits for the copy an earlier attempt made instead of copying twice", () =>
    Effect.gen(function* () {
      // Prepare: the destination already holds a pending copy of this source made by the sharer
      const mocks = mockAccounts()
      const source = job(SOURCE_ID)
      mocks.sourceEc2.on(DescribeSnapshotsCommand).resolves({ Snapshots: [sourceSnapshot] })
      mocks.sourceEc2.on(ModifySnapshotAttributeCommand).resolves({})
      const copies = mockDestinationCopies(mocks)
      mocks.destinationEc2.on(DescribeSnapshotsCommand, { OwnerIds: ["self"] }).resolves({
        Snapshots: [
          {
            SnapshotId: "snap-0earlier000000001",
            State: "pending",
            Tags: [
              { Key: MANAGED_BY_TAG, Value: "sharer" },
              { Key: SOURCE_ARN_TAG, Value: source.recoveryPointArn },
              { Key: SOURCE_RESOURCE_TAG, Value: source.resourceArn }
            ]
          }
        ]
      })
      // Act
      const result = yield* replicateEbsSnapshot(source).pipe(Effect.provide(mocks.layer))
      // Assess
      assert.strictEqual(copies.copiesMade(), 0)
      assert.strictEqual(result._tag, "Succeeded")
      assert.strictEqual(result.outcome.replicaArn, `arn:aws:ec2:${DESTINATION_REGION}::snapshot/snap-0earlier000000001`)
      assert.strictEqual(mocks.destinationEc2.commandCalls(DeleteSnapshotCommand).length, 0)
    })
  )
})
