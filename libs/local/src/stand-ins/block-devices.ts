import { createHash } from "node:crypto"
import { mkdir, open, rm, type FileHandle } from "node:fs/promises"
import { join } from "node:path"
import { GetSnapshotBlockCommand, ListSnapshotBlocksCommand, type Block } from "@aws-sdk/client-ebs"
import { Context, Duration, Effect, Layer } from "effect"
import { BlockDevices, DeviceUnavailable, Ebs, Ec2, awsCall, describeVolume } from "@backup-actions/aws"
import { ServiceSettings } from "@backup-actions/config"
import { runCommand } from "../command"

/** losetup answers at once; anything longer is a stuck loop driver. */
const LOSETUP_TIMEOUT = Duration.minutes(2)

/** Blocks read at once while the image is written. */
const BLOCK_CONCURRENCY = 8

const tryPromise = <A>(volumeId: string, what: string, run: () => Promise<A>) =>
  Effect.tryPromise({ try: run, catch: (error) => new DeviceUnavailable({ volumeId, reason: `${what}: ${String(error)}` }) })

/**
 * Every block the snapshot lists, and its volume size. The emulator lists the blocks in the
 * order they were put rather than by index, and reports a BlockSize of 512 while its blocks
 * hold 512 KiB: here neither matters, as each block is written at its index times the size of
 * the data it holds.
 */
const listBlocks = (ebs: Context.Tag.Service<Ebs>, snapshotId: string) =>
  Effect.gen(function* () {
    const blocks: Array<Block> = []
    let volumeSizeGiB = 0
    let nextToken: string | undefined
    do {
      const page = yield* awsCall("ebs:ListSnapshotBlocks", (abortSignal) =>
        ebs.send(new ListSnapshotBlocksCommand({ SnapshotId: snapshotId, MaxResults: 10_000, NextToken: nextToken }), { abortSignal })
      )
      volumeSizeGiB = page.VolumeSize ?? volumeSizeGiB
      blocks.push(...(page.Blocks ?? []))
      nextToken = page.NextToken
    } while (nextToken !== undefined)
    return { blocks, volumeBytes: volumeSizeGiB * 1024 ** 3 }
  })

/** Reads one block, checks it against the SHA-256 the EBS direct APIs return with it, and writes it into the image. */
const copyBlock = (ebs: Context.Tag.Service<Ebs>, volumeId: string, snapshotId: string, block: Block, file: FileHandle) =>
  Effect.gen(function* () {
    const index = block.BlockIndex ?? 0
    const read = yield* awsCall("ebs:GetSnapshotBlock", async (abortSignal) => {
      const answer = await ebs.send(new GetSnapshotBlockCommand({ SnapshotId: snapshotId, BlockIndex: index, BlockToken: block.BlockToken }), { abortSignal })
      const data = answer.BlockData === undefined ? new Uint8Array(0) : await answer.BlockData.transformToByteArray()
      return { data, checksum: answer.Checksum, algorithm: answer.ChecksumAlgorithm }
    })
    const actual = createHash("sha256").update(read.data).digest("base64")
    if (read.checksum !== undefined && read.algorithm === "SHA256" && read.checksum !== actual) {
      return yield* new DeviceUnavailable({ volumeId, reason: `block ${index} of ${snapshotId} failed its checksum (expected ${read.checksum}, read ${actual})` })
    }
    yield* tryPromise(volumeId, "write image", () => file.write(read.data, 0, read.data.length, index * read.data.length))
  })

/** The snapshot's blocks written into a sparse image file of the volume's size. */
const writeImage = (ebs: Context.Tag.Service<Ebs>, volumeId: string, snapshotId: string, image: string) =>
  Effect.gen(function* () {
    const { blocks, volumeBytes } = yield* listBlocks(ebs, snapshotId)
    const file = yield* tryPromise(volumeId, "create image", () => open(image, "w"))
    yield* Effect.ensuring(
      Effect.gen(function* () {
        yield* tryPromise(volumeId, "size image", () => file.truncate(volumeBytes))
        yield* Effect.forEach(blocks, (block) => copyBlock(ebs, volumeId, snapshotId, block, file), { concurrency: BLOCK_CONCURRENCY, discard: true })
      }),
      Effect.promise(() => file.close())
    )
  })

const losetup = (volumeId: string, args: ReadonlyArray<string>) =>
  runCommand("losetup", args, { timeout: LOSETUP_TIMEOUT }).pipe(
    Effect.mapError((failed) => new DeviceUnavailable({ volumeId, reason: `${failed.command}: ${failed.reason}` }))
  )

/**
 * What a killed predecessor left of its volumes: the loop devices over images in `directory`
 * (losetup marks an image deleted under it with " (deleted)") detached, then the images removed.
 * On AWS the volume itself goes with the restorer's deletion; here the host holds it.
 */
const sweepDevices = (directory: string) =>
  Effect.gen(function* () {
    const listed = yield* runCommand("losetup", ["--list", "--noheadings", "--raw", "--output", "NAME,BACK-FILE"], { timeout: LOSETUP_TIMEOUT }).pipe(Effect.orElseSucceed(() => ""))
    const loops = listed
      .split("\n")
      .map((line) => line.trim().split(" "))
      .filter(([, backing]) => backing?.startsWith(`${directory}/`) === true)
      .map(([name]) => name ?? "")
    for (const loop of loops) yield* losetup("left over", ["--detach", loop]).pipe(Effect.ignoreLogged)
    yield* Effect.promise(() => rm(directory, { recursive: true, force: true }))
    if (loops.length > 0) yield* Effect.logWarning(`detached ${loops.join(", ")}: the images of volumes a stopped process had attached`)
  })

/**
 * BlockDevices on the emulator, where a volume has no device behind it: its snapshot's blocks
 * are written into a sparse image file (through the EBS direct APIs) under the service's work
 * directory, and a loop device with partition scanning is put over it, which is what an attached
 * EBS volume looks like. The loop device is writable, as an attached volume is: the image is
 * this archive's own copy of the snapshot, removed with the scope, and a journal replayed on
 * mounting writes to it. What a killed process left there is swept when the layer is built.
 */
export const LocalBlockDevices: Layer.Layer<BlockDevices, never, Ec2 | Ebs | ServiceSettings> = Layer.effect(
  BlockDevices,
  Effect.gen(function* () {
    const ec2 = yield* Ec2
    const ebs = yield* Ebs
    const settings = yield* ServiceSettings
    yield* sweepDevices(join(settings.workDir, "devices"))
    return {
      attach: (volumeId: string) =>
        Effect.gen(function* () {
          const volume = yield* describeVolume(ec2, volumeId)
          const snapshotId = volume.SnapshotId
          if (snapshotId === undefined || snapshotId === "") {
            return yield* new DeviceUnavailable({ volumeId, reason: "the volume was not created from a snapshot" })
          }
          const dir = join(settings.workDir, "devices")
          const image = join(dir, `${volumeId}.img`)
          yield* Effect.acquireRelease(
            tryPromise(volumeId, "create work directory", () => mkdir(dir, { recursive: true })).pipe(Effect.zipRight(writeImage(ebs, volumeId, snapshotId, image))),
            () => Effect.promise(() => rm(image, { force: true }))
          )
          const device = yield* Effect.acquireRelease(
            losetup(volumeId, ["--find", "--show", "--partscan", image]).pipe(Effect.map((output) => output.trim())),
            (loop) => losetup(volumeId, ["--detach", loop]).pipe(Effect.ignoreLogged)
          )
          yield* Effect.logInfo(`volume ${volumeId} (snapshot ${snapshotId}) is ${device}`)
          return device
        })
    }
  })
)
