import { createHash, randomBytes } from "node:crypto"
import { closeSync, existsSync, mkdtempSync, openSync, readSync, readdirSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { CompleteSnapshotCommand, PutSnapshotBlockCommand, StartSnapshotCommand } from "@aws-sdk/client-ebs"
import { CreateVolumeCommand } from "@aws-sdk/client-ec2"
import { Duration, Effect, Layer } from "effect"
import { BlockDevices, Ebs, Ec2, awsCall } from "@backup-actions/aws"
import { ServiceSettings } from "@backup-actions/config"
import { runCommand } from "../command"
import { type Emulator, EMULATOR_REGION, emulatorClients, startEmulator } from "../emulator"
import { LocalBlockDevices } from "./block-devices"

const BLOCK = 512 * 1024

let emulator: Emulator
const workDir = mkdtempSync(join(tmpdir(), "local-block-devices-test-"))
beforeAll(async () => {
  emulator = await startEmulator({ name: "local-block-devices-test" })
})
afterAll(async () => {
  await emulator.stop()
  rmSync(workDir, { recursive: true, force: true })
})

const layer = () => {
  const clients = emulatorClients(emulator.endpoint)
  const settings = ServiceSettings.layer({ busName: "bus", artifactBucket: "artifacts", ledgerTable: "ledger", queueUrl: "q", deadLetterQueueUrl: "dlq", workDir })
  return Layer.merge(clients, LocalBlockDevices.pipe(Layer.provide(Layer.merge(clients, settings))))
}

/** The block at `index` of a device. */
const readAt = (device: string, index: number): Buffer => {
  const fd = openSync(device, "r")
  try {
    const block = Buffer.alloc(BLOCK)
    readSync(fd, block, 0, BLOCK, index * BLOCK)
    return block
  } finally {
    closeSync(fd)
  }
}

/** The loop devices over files under the work directory, as losetup lists them. */
const loopsOverWorkDir = runCommand("losetup", ["--list", "--noheadings", "--output", "BACK-FILE"], { timeout: Duration.seconds(30) }).pipe(
  Effect.map((listed) => listed.split("\n").filter((line) => line.includes(workDir)))
)

describe("a restored volume as a loop device on the emulator", () => {
  it.live("holds the snapshot's blocks at their indexes, whatever order they were put in, until the scope closes", () =>
    Effect.gen(function* () {
      // Prepare: blocks 3 and 0 of a 1 GiB snapshot, put in that order
      const ebs = yield* Ebs
      const ec2 = yield* Ec2
      const started = yield* awsCall("ebs:StartSnapshot", (abortSignal) => ebs.send(new StartSnapshotCommand({ VolumeSize: 1, Timeout: 60 }), { abortSignal }))
      const snapshotId = started.SnapshotId ?? ""
      const blocks = new Map([
        [3, randomBytes(BLOCK)],
        [0, randomBytes(BLOCK)]
      ])
      for (const [index, data] of blocks) {
        yield* awsCall("ebs:PutSnapshotBlock", (abortSignal) =>
          ebs.send(
            new PutSnapshotBlockCommand({
              SnapshotId: snapshotId,
              BlockIndex: index,
              BlockData: data,
              DataLength: BLOCK,
              Checksum: createHash("sha256").update(data).digest("base64"),
              ChecksumAlgorithm: "SHA256"
            }),
            { abortSignal }
          )
        )
      }
      yield* awsCall("ebs:CompleteSnapshot", (abortSignal) => ebs.send(new CompleteSnapshotCommand({ SnapshotId: snapshotId, ChangedBlocksCount: blocks.size }), { abortSignal }))
      const volume = yield* awsCall("ec2:CreateVolume", (abortSignal) =>
        ec2.send(new CreateVolumeCommand({ SnapshotId: snapshotId, AvailabilityZone: `${EMULATOR_REGION}a` }), { abortSignal })
      )
      const volumeId = volume.VolumeId ?? ""
      // Act
      const seen = yield* Effect.scoped(
        Effect.gen(function* () {
          const device = yield* Effect.flatMap(BlockDevices, (devices) => devices.attach(volumeId))
          const size = yield* runCommand("blockdev", ["--getsize64", device], { timeout: Duration.seconds(30) })
          return { device, bytes: Number(size.trim()), first: readAt(device, 0), second: readAt(device, 1), fourth: readAt(device, 3), loops: yield* loopsOverWorkDir }
        })
      )
      // Assess
      assert.match(seen.device, /^\/dev\/loop\d+$/)
      assert.strictEqual(seen.bytes, 1024 ** 3)
      assert.isTrue(seen.first.equals(blocks.get(0) ?? Buffer.alloc(0)))
      assert.isTrue(seen.fourth.equals(blocks.get(3) ?? Buffer.alloc(0)))
      assert.isTrue(seen.second.equals(Buffer.alloc(BLOCK)))
      assert.strictEqual(seen.loops.length, 1)
      assert.deepStrictEqual(yield* loopsOverWorkDir, [])
      assert.deepStrictEqual(existsSync(join(workDir, "devices")) ? readdirSync(join(workDir, "devices")) : [], [])
    }).pipe(Effect.provide(layer()))
  )

  it.live("refuses a volume that was not made from a snapshot", () =>
    Effect.gen(function* () {
      // Prepare
      const ec2 = yield* Ec2
      const volume = yield* awsCall("ec2:CreateVolume", (abortSignal) =>
        ec2.send(new CreateVolumeCommand({ Size: 1, AvailabilityZone: `${EMULATOR_REGION}a` }), { abortSignal })
      )
      // Act
      const error = yield* Effect.flip(Effect.scoped(Effect.flatMap(BlockDevices, (devices) => devices.attach(volume.VolumeId ?? ""))))
      // Assess
      assert.strictEqual(error._tag === "DeviceUnavailable" ? error.reason : error.message, "the volume was not created from a snapshot")
    }).pipe(Effect.provide(layer()))
  )
})
