import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { CreateVolumeCommand, DescribeVolumesCommand } from "@aws-sdk/client-ec2"
import { Effect } from "effect"
import { Ec2, awsCall } from "@backup-actions/aws"
import { type Emulator, emulatorClients, startEmulator } from "@backup-actions/local"
import { CREATED_AT_TAG, MANAGED_TAG, sweepLeftovers } from "./volumes"

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
