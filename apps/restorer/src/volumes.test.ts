import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { CreateSnapshotCommand, CreateVolumeCommand, DescribeSnapshotsCommand, DescribeVolumesCommand, EC2Client } from "@aws-sdk/client-ec2"
import { mockClient } from "aws-sdk-client-mock"
import { Effect } from "effect"
import { Ec2, awsCall } from "@backup-actions/aws"
import { type Emulator, emulatorClients, startEmulator } from "@backup-actions/local"
import { CREATED_AT_TAG, MANAGED_TAG, RECOVERY_POINT_TAG, restoreVolume, sweepLeftovers, volumeClientToken } from "./volumes"

let emulator: Emulator
beforeAll(async () => {
  emulator = await startEmulator({ name: "restorer-test" })
})
afterAll(() => emulator.stop())

const createVolume = (tags: ReadonlyArray<{ Key: string; Value: string }>) =>
  Effect.flatMap(Ec2, (ec2) =>
    awsCall("ec2:CreateVolume", (abortSignal) =>
      ec2.send(
        new CreateVolumeCommand({
          AvailabilityZone: "us-east-1a",
          Size: 1,
          VolumeType: "gp3",
          ...(tags.length === 0 ? {} : { TagSpecifications: [{ ResourceType: "volume", Tags: [...tags] }] })
        }),
        { abortSignal }
      )
    )
  ).pipe(Effect.map((created) => created.VolumeId ?? ""))

describe("the leftover sweeper", () => {
  it.live("deletes only volumes tagged as ours that are older than the limit", () =>
    Effect.gen(function* () {
      // Prepare: an old volume of ours, a fresh one of ours, and an old one that is not ours
      const hoursAgo = (hours: number) => new Date(Date.now() - hours * 3_600_000).toISOString()
      const oldOurs = yield* createVolume([{ Key: MANAGED_TAG, Value: "true" }, { Key: CREATED_AT_TAG, Value: hoursAgo(7) }])
      const freshOurs = yield* createVolume([{ Key: MANAGED_TAG, Value: "true" }, { Key: CREATED_AT_TAG, Value: hoursAgo(1) }])
      const notOurs = yield* createVolume([{ Key: CREATED_AT_TAG, Value: hoursAgo(30) }])
      // Act
      const deleted = yield* sweepLeftovers("6 hours")
      // Assess
      assert.deepStrictEqual(deleted, [oldOurs])
      const ec2 = yield* Ec2
      const remaining = yield* awsCall("ec2:DescribeVolumes", (abortSignal) => ec2.send(new DescribeVolumesCommand({}), { abortSignal }))
      const ids = (remaining.Volumes ?? []).map((volume) => volume.VolumeId)
      assert.includeMembers(ids, [freshOurs, notOurs])
      assert.notInclude(ids, oldOurs)
    }).pipe(Effect.scoped, Effect.provide(emulatorClients(emulator.endpoint)))
  )
})

describe("restoring a snapshot to a volume", () => {
  const recoveryPointArn = "arn:aws:ec2:us-east-1::snapshot/snap-0123456789abcdef0"
  const snapshotId = "snap-0123456789abcdef0"

  it("derives a client token of 64 ASCII characters that is the same for the same attempt and new for the next", () => {
    // Act
    const first = volumeClientToken(recoveryPointArn, snapshotId, 1)
    // Assess
    assert.match(first, /^[0-9a-f]{64}$/)
    assert.strictEqual(volumeClientToken(recoveryPointArn, snapshotId, 1), first)
    assert.notStrictEqual(volumeClientToken(recoveryPointArn, snapshotId, 2), first)
    assert.notStrictEqual(volumeClientToken("arn:aws:ec2:us-east-1::snapshot/snap-0fedcba9876543210", "snap-0fedcba9876543210", 1), first)
  })

  // Idempotency tokens are not checked by the emulator: the exact requests are checked against a mocked client.
  it.live("sends the same CreateVolume, client token included, again when the first answer is lost, and gets the one volume", () =>
    Effect.gen(function* () {
      // Prepare: the first CreateVolume fails with a 500 after EC2 made the volume; the retry gets it
      const ec2 = new EC2Client({ region: "us-east-1" })
      const mock = mockClient(ec2)
      mock.on(DescribeSnapshotsCommand).resolves({ Snapshots: [{ SnapshotId: snapshotId, VolumeSize: 8, Encrypted: true, KmsKeyId: "arn:aws:kms:us-east-1:123456789012:key/abc" }] })
      mock
        .on(CreateVolumeCommand)
        .rejectsOnce(Object.assign(new Error("We encountered an internal error. Please try again."), { name: "InternalError", $metadata: { httpStatusCode: 500 } }))
        .resolves({ VolumeId: "vol-0123456789abcdef0", Size: 8 })
      mock.on(DescribeVolumesCommand).resolves({ Volumes: [{ VolumeId: "vol-0123456789abcdef0", State: "available" }] })
      // Act
      const volume = yield* restoreVolume(snapshotId, recoveryPointArn, "us-east-1a", 3).pipe(Effect.provideService(Ec2, ec2))
      // Assess
      assert.deepStrictEqual(volume, { volumeId: "vol-0123456789abcdef0", availabilityZone: "us-east-1a", sizeGiB: 8 })
      const requests = mock.commandCalls(CreateVolumeCommand).map((call) => call.args[0].input)
      assert.strictEqual(requests.length, 2)
      assert.deepStrictEqual(requests[1], requests[0])
      const createdAt = requests[0]?.TagSpecifications?.[0]?.Tags?.find((tag) => tag.Key === CREATED_AT_TAG)?.Value ?? ""
      assert.deepStrictEqual(requests[0], {
        ClientToken: volumeClientToken(recoveryPointArn, snapshotId, 3),
        SnapshotId: snapshotId,
        AvailabilityZone: "us-east-1a",
        VolumeType: "gp3",
        Encrypted: true,
        KmsKeyId: "arn:aws:kms:us-east-1:123456789012:key/abc",
        TagSpecifications: [
          {
            ResourceType: "volume",
            Tags: [
              { Key: MANAGED_TAG, Value: "true" },
              { Key: RECOVERY_POINT_TAG, Value: recoveryPointArn },
              { Key: CREATED_AT_TAG, Value: createdAt },
              { Key: "Name", Value: `backup-actions restore of ${snapshotId}` }
            ]
          }
        ]
      })
      assert.isTrue(Number.isFinite(Date.parse(createdAt)))
    })
  )

  it.live("restores a snapshot to an available gp3 volume tagged with its recovery point on the emulator", () =>
    Effect.gen(function* () {
      // Prepare
      const ec2 = yield* Ec2
      const source = yield* createVolume([])
      const snapshot = yield* awsCall("ec2:CreateSnapshot", (abortSignal) => ec2.send(new CreateSnapshotCommand({ VolumeId: source }), { abortSignal }))
      const id = snapshot.SnapshotId ?? ""
      const arn = `arn:aws:ec2:us-east-1::snapshot/${id}`
      // Act
      const volume = yield* restoreVolume(id, arn, "us-east-1a", 2)
      // Assess
      const described = yield* awsCall("ec2:DescribeVolumes", (abortSignal) => ec2.send(new DescribeVolumesCommand({ VolumeIds: [volume.volumeId] }), { abortSignal }))
      const restored = described.Volumes?.[0]
      assert.strictEqual(restored?.State, "available")
      assert.strictEqual(restored?.SnapshotId, id)
      assert.strictEqual(restored?.VolumeType, "gp3")
      assert.strictEqual(restored?.Tags?.find((tag) => tag.Key === RECOVERY_POINT_TAG)?.Value, arn)
    }).pipe(Effect.provide(emulatorClients(emulator.endpoint)))
  )

  it.effect("uses the first attempt's client token when the caller names no attempt", () =>
    Effect.gen(function* () {
      // Prepare
      const ec2 = new EC2Client({ region: "us-east-1" })
      const mock = mockClient(ec2)
      mock.on(DescribeSnapshotsCommand).resolves({ Snapshots: [{ SnapshotId: snapshotId, VolumeSize: 8 }] })
      mock.on(CreateVolumeCommand).resolves({ VolumeId: "vol-0123456789abcdef0", Size: 8 })
      mock.on(DescribeVolumesCommand).resolves({ Volumes: [{ VolumeId: "vol-0123456789abcdef0", State: "available" }] })
      // Act
      yield* restoreVolume(snapshotId, recoveryPointArn, "us-east-1a").pipe(Effect.provideService(Ec2, ec2))
      // Assess
      assert.deepStrictEqual(
        mock.commandCalls(CreateVolumeCommand).map((call) => call.args[0].input.ClientToken),
        [volumeClientToken(recoveryPointArn, snapshotId, 1)]
      )
    })
  )
})
