import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { CreateImageCommand, DescribeImagesCommand, DescribeSnapshotsCommand, RunInstancesCommand } from "@aws-sdk/client-ec2"
import { Effect, Layer } from "effect"
import { Ec2, RecoveryPoints, awsCall, undefinedWhenNotFound } from "@backup-actions/aws"
import { type Emulator, emulatorAwsConfig, emulatorClients, startEmulator } from "@backup-actions/local"
import { amiArn } from "./arns"
import { ExporterRecoveryPointsLive } from "./recovery-points"

let emulator: Emulator
beforeAll(async () => {
  emulator = await startEmulator({ name: "exporter-recovery-points-test" })
})
afterAll(() => emulator.stop())

const layer = () => {
  const clients = Layer.merge(emulatorClients(emulator.endpoint), emulatorAwsConfig(emulator.endpoint))
  return Layer.merge(clients, Layer.provide(ExporterRecoveryPointsLive, clients))
}

describe("deleting an AMI recovery point on the emulator", () => {
  it.live("deregisters the image and deletes its snapshot, and says deleted again when asked a second time", () =>
    Effect.gen(function* () {
      // Prepare: an AMI made with CreateImage from an instance, as AWS Backup makes one
      const ec2 = yield* Ec2
      const base = yield* awsCall("ec2:DescribeImages", (abortSignal) => ec2.send(new DescribeImagesCommand({ Owners: ["amazon"] }), { abortSignal }))
      const instances = yield* awsCall("ec2:RunInstances", (abortSignal) =>
        ec2.send(new RunInstancesCommand({ ImageId: base.Images?.[0]?.ImageId, MinCount: 1, MaxCount: 1, InstanceType: "t3.micro" }), { abortSignal })
      )
      const created = yield* awsCall("ec2:CreateImage", (abortSignal) =>
        ec2.send(new CreateImageCommand({ InstanceId: instances.Instances?.[0]?.InstanceId ?? "", Name: "nightly" }), { abortSignal })
      )
      const imageId = created.ImageId ?? ""
      const image = yield* awsCall("ec2:DescribeImages", (abortSignal) => ec2.send(new DescribeImagesCommand({ ImageIds: [imageId] }), { abortSignal }))
      const snapshotId = image.Images?.[0]?.BlockDeviceMappings?.[0]?.Ebs?.SnapshotId ?? ""
      assert.match(snapshotId, /^snap-/)
      const points = yield* RecoveryPoints
      const ref = { recoveryPointArn: amiArn("aws", "us-east-1", imageId), backupVaultName: "Default" }
      // Act
      const first = yield* points.delete(ref)
      const second = yield* points.delete(ref)
      // Assess
      assert.deepStrictEqual([first, second], ["deleted", "deleted"])
      const images = yield* awsCall("ec2:DescribeImages", (abortSignal) => ec2.send(new DescribeImagesCommand({ Owners: ["self"] }), { abortSignal }))
      assert.notInclude((images.Images ?? []).map((candidate) => candidate.ImageId), imageId)
      const snapshots = yield* undefinedWhenNotFound(
        awsCall("ec2:DescribeSnapshots", (abortSignal) => ec2.send(new DescribeSnapshotsCommand({ SnapshotIds: [snapshotId] }), { abortSignal }))
      )
      assert.deepStrictEqual(snapshots?.Snapshots ?? [], [])
    }).pipe(Effect.provide(layer()))
  )
})
