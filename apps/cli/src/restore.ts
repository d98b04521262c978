import { spawn } from "node:child_process"
import { createHash, randomUUID } from "node:crypto"
import { lstat, mkdir } from "node:fs/promises"
import { join, resolve } from "node:path"
import type { Readable } from "node:stream"
import { CompleteSnapshotCommand, GetSnapshotBlockCommand, ListSnapshotBlocksCommand, PutSnapshotBlockCommand, StartSnapshotCommand, type Block } from "@aws-sdk/client-ebs"
import { DeleteSnapshotCommand, DescribeSnapshotsCommand } from "@aws-sdk/client-ec2"
import { Console, Duration, Effect, Runtime, Schedule, Schema, Stream } from "effect"
import {
  ProblemList,
  RawImageCheck,
  compareDirectoryWithManifest,
  compareLayout,
  describeLayout,
  rawRanges,
  readLines,
  treeEntries,
  type MemberFound
} from "@backup-actions/archive"
import { Ebs, Ec2, awsCall } from "@backup-actions/aws"
import { rawMembersOf, type DiskLayout } from "@backup-actions/contracts"
import { CompositeChecksum, describeArchiveObject, openArchiveStream } from "./archive-object"
import { CheckFailed, OperationFailed, UsageError } from "./errors"
import { fetchManifest } from "./manifest"
import { Progress } from "./progress"
import { readThrough } from "./read-through"
import { manifestBeside, s3Url, type S3Location } from "./s3-url"
import { checksumProblems, objectProblems, scratchDirectory } from "./verify"

/** GNU tar extracting what the streamer's `tar --create` wrote: modes, numeric owners, links and holes. */
export const TAR_EXTRACT_ARGS = (directory: string): ReadonlyArray<string> => [
  "--extract",
  "--file=-",
  `--directory=${directory}`,
  "--numeric-owner",
  "--preserve-permissions",
  ...(process.getuid?.() === 0 ? ["--same-owner"] : [])
]

/** Pipes the content into `tar --extract`; rejects with tar's own words. */
const extractWithTar = (directory: string) => async (content: Readable): Promise<void> => {
  const child = spawn("tar", TAR_EXTRACT_ARGS(directory), { stdio: ["pipe", "ignore", "pipe"] })
  let errors = ""
  child.stderr.on("data", (data: Buffer) => (errors += data.toString()))
  child.stdin.on("error", () => undefined)
  content.pipe(child.stdin)
  await new Promise<void>((done, fail) => {
    child.on("error", (error) => fail(new Error(`cannot run tar: ${error.message}`)))
    child.on("close", (code) => (code === 0 ? done() : fail(new Error(`tar: ${errors.trim() || `exited with ${code}`}`))))
  })
}

/** What the restored directory holds at each top-level member the layout names. */
const membersOnDisk = async (directory: string, layout: DiskLayout | undefined): Promise<ReadonlyMap<string, MemberFound>> => {
  const members = new Map<string, MemberFound>()
  if (layout === undefined) return members
  const names = [...layout.volumes.flatMap((volume) => (volume.member === undefined ? [] : [volume.member])), ...rawMembersOf(layout).map((raw) => raw.member)]
  for (const name of new Set(names)) {
    const stats = await lstat(join(directory, name)).catch(() => undefined)
    if (stats !== undefined) members.set(name, { type: stats.isFile() ? "file" : stats.isDirectory() ? "directory" : stats.isSymbolicLink() ? "symlink" : "other", size: stats.isFile() ? stats.size : 0 })
  }
  return members
}

/** `restore --to <directory>`: a tar archive extracted, then every entry checked against the manifest. */
export const restoreTreeCommand = (location: S3Location, target: string) =>
  Effect.scoped(
    Effect.gen(function* () {
      const progress = yield* Progress
      const scratch = yield* scratchDirectory
      const manifestFile = join(scratch, "manifest.ndjson")
      const header = yield* fetchManifest(manifestBeside(location), manifestFile)
      if (header.kind !== "backup-actions/file-manifest") {
        return yield* new UsageError({ message: `${s3Url(location)} is a raw disk image, not a tar: restore it with --to-snapshot`, command: "restore" })
      }
      const directory = resolve(target)
      yield* Effect.tryPromise({
        try: () => mkdir(directory, { recursive: true }),
        catch: (error) => new OperationFailed({ message: `cannot make ${directory}: ${String(error)}` })
      })
      const archive = yield* describeArchiveObject(location)
      const meter = yield* progress.meter(`restore ${location.key}`, archive.size)
      const checksum = new CompositeChecksum(archive.partSizes)
      const stream = yield* openArchiveStream(archive, checksum, meter.update)
      const read = yield* Effect.tryPromise({
        try: () => readThrough(stream, header.compression, extractWithTar(directory)),
        catch: (error) => new OperationFailed({ message: `cannot read ${s3Url(location)}: ${error instanceof Error ? error.message : String(error)}` })
      })
      meter.finish()
      const problems = new ProblemList()
      problems.addAll(checksumProblems(header, archive, checksum))
      problems.addAll(objectProblems(header, archive))
      if (read.failure !== undefined) problems.add(`extraction stopped: ${read.failure}`)
      const owners = process.getuid?.() === 0
      if (read.failure === undefined) {
        const checkMeter = yield* progress.meter(`check ${directory}`, header.fileBytes)
        let checkedBytes = 0
        const checked = yield* Effect.tryPromise({
          try: () =>
            compareDirectoryWithManifest(directory, treeEntries(readLines(manifestFile)), {
              owners,
              onFile: (bytes) => checkMeter.update((checkedBytes += bytes))
            }),
          catch: (error) => new OperationFailed({ message: `cannot check ${directory}: ${error instanceof Error ? error.message : String(error)}` })
        })
        checkMeter.finish()
        problems.addAll(checked.problems)
        const members = yield* Effect.promise(() => membersOnDisk(directory, header.layout))
        problems.addAll(compareLayout(header.layout, (member) => members.get(member)))
      }
      if (problems.size > 0) {
        return yield* new CheckFailed({
          summary: `the restore of ${s3Url(location)} into ${directory} failed; what is there cannot be trusted:`,
          problems: problems.toArray()
        })
      }
      yield* Console.log(
        `restored ${header.entries} entries (${header.fileBytes} bytes in files) from ${s3Url(location)} into ${directory}; every entry matches the manifest${owners ? "" : " (owners not checked: not run as root)"}`
      )
      const layout = describeLayout(header.layout)
      if (layout.length > 0) yield* Console.log(`one member per partition and logical volume:\n${layout.map((line) => `  ${line}`).join("\n")}`)
    })
  )

/** The size of an EBS snapshot block: what PutSnapshotBlock takes. */
export const EBS_BLOCK_BYTES = 512 * 1024

/** Cuts a stream into fixed-size blocks, in order; the last one zero-padded. */
export async function* blocksOf(content: AsyncIterable<Buffer>, blockBytes: number): AsyncGenerator<{ readonly index: number; readonly data: Buffer }> {
  let block = Buffer.alloc(blockBytes)
  let filled = 0
  let index = 0
  for await (const chunk of content) {
    let at = 0
    while (at < chunk.length) {
      const take = Math.min(blockBytes - filled, chunk.length - at)
      chunk.copy(block, filled, at, at + take)
      filled += take
      at += take
      if (filled === blockBytes) {
        yield { index, data: block }
        index += 1
        block = Buffer.alloc(blockBytes)
        filled = 0
      }
    }
  }
  if (filled > 0) yield { index, data: block }
}

const isZero = (block: Buffer): boolean => {
  for (let at = 0; at < block.length; at += 8) if (block.readBigUInt64LE(at) !== 0n) return false
  return true
}

class SnapshotNotReady extends Schema.TaggedError<SnapshotNotReady>()("SnapshotNotReady", { state: Schema.String }) {}

/** Waits until the snapshot is completed (minutes on AWS), at most an hour. */
const waitCompleted = (snapshotId: string) =>
  Effect.gen(function* () {
    const ec2 = yield* Ec2
    const described = yield* awsCall("ec2:DescribeSnapshots", (abortSignal) =>
      ec2.send(new DescribeSnapshotsCommand({ SnapshotIds: [snapshotId] }), { abortSignal })
    )
    const state = described.Snapshots?.[0]?.State ?? "missing"
    if (state === "error") return yield* new OperationFailed({ message: `the new snapshot ${snapshotId} ended in state error` })
    if (state !== "completed") return yield* new SnapshotNotReady({ state })
  }).pipe(
    Effect.retry({ schedule: Schedule.spaced(Duration.seconds(5)), while: (error) => error._tag === "SnapshotNotReady", times: 720 }),
    Effect.catchTag("SnapshotNotReady", (error) => Effect.fail(new OperationFailed({ message: `the new snapshot ${snapshotId} is still ${error.state} after an hour` })))
  )

/**
 * Reads the snapshot back through the EBS direct APIs and checks it against the manifest as a
 * raw image: each block's SHA-256 as EBS returns it, unlisted blocks as zeros.
 */
const readBack = (snapshotId: string, manifestFile: string, imageBytes: number) =>
  Effect.gen(function* () {
    const ebs = yield* Ebs
    const blocks: Array<Block> = []
    let token: string | undefined
    do {
      const page = yield* awsCall("ebs:ListSnapshotBlocks", (abortSignal) =>
        ebs.send(new ListSnapshotBlocksCommand({ SnapshotId: snapshotId, NextToken: token }), { abortSignal })
      )
      blocks.push(...(page.Blocks ?? []))
      token = page.NextToken
    } while (token !== undefined)
    // The check reads in index order, which not every EBS endpoint lists in.
    blocks.sort((left, right) => (left.BlockIndex ?? 0) - (right.BlockIndex ?? 0))
    const check = new RawImageCheck(rawRanges(readLines(manifestFile)), imageBytes)
    const problems = new ProblemList()
    let position = 0
    yield* Stream.fromIterable(blocks).pipe(
      Stream.mapEffect(
        (block) =>
          awsCall("ebs:GetSnapshotBlock", async (abortSignal) => {
            const answer = await ebs.send(new GetSnapshotBlockCommand({ SnapshotId: snapshotId, BlockIndex: block.BlockIndex, BlockToken: block.BlockToken }), { abortSignal })
            const bytes = answer.BlockData === undefined ? new Uint8Array(0) : await answer.BlockData.transformToByteArray()
            return { index: block.BlockIndex ?? 0, data: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), checksum: answer.Checksum }
          }),
        { concurrency: 8 }
      ),
      Stream.runForEach((read) =>
        Effect.sync(() => {
          const actual = createHash("sha256").update(read.data).digest("base64")
          if (read.checksum !== undefined && read.checksum !== actual) problems.add(`block ${read.index} reads back with SHA-256 ${actual}, EBS says ${read.checksum}`)
          const offset = read.index * EBS_BLOCK_BYTES
          if (offset > position) check.feed({ zeros: offset - position })
          const length = Math.min(read.data.length, imageBytes - offset)
          check.feed(read.data.subarray(0, length))
          position = offset + length
        })
      )
    )
    if (position < imageBytes) check.feed({ zeros: imageBytes - position })
    problems.addAll(check.finish())
    return { problems: problems.toArray(), blocks: blocks.length }
  })

/**
 * `restore --to-snapshot`: a raw image written as a new EBS snapshot (StartSnapshot,
 * PutSnapshotBlock for every block that is not all zeros, CompleteSnapshot), then read back.
 * A snapshot whose data did not check out is never completed, and is deleted.
 */
export const restoreSnapshotCommand = (location: S3Location) =>
  Effect.scoped(
    Effect.gen(function* () {
      const progress = yield* Progress
      const ebs = yield* Ebs
      const ec2 = yield* Ec2
      const scratch = yield* scratchDirectory
      const manifestFile = join(scratch, "manifest.ndjson")
      const header = yield* fetchManifest(manifestBeside(location), manifestFile)
      if (header.kind !== "backup-actions/raw-image-manifest") {
        return yield* new UsageError({ message: `${s3Url(location)} is a tar of files, not a disk image: restore it with --to <directory>`, command: "restore" })
      }
      if (header.imageBytes % EBS_BLOCK_BYTES !== 0) {
        return yield* new OperationFailed({ message: `the image is ${header.imageBytes} bytes, not a whole number of 512 KiB EBS blocks` })
      }
      const archive = yield* describeArchiveObject(location)
      const started = yield* awsCall("ebs:StartSnapshot", (abortSignal) =>
        ebs.send(
          new StartSnapshotCommand({
            VolumeSize: Math.ceil(header.imageBytes / 1024 ** 3),
            Description: `restored from ${s3Url(location)}`,
            Tags: [{ Key: "backup-actions:restored-from", Value: s3Url(location) }],
            ClientToken: randomUUID(),
            Timeout: 60
          }),
          { abortSignal }
        )
      )
      const snapshotId = started.SnapshotId ?? ""
      const meter = yield* progress.meter(`restore ${location.key} to ${snapshotId}`, archive.size)
      const checksum = new CompositeChecksum(archive.partSizes)
      const stream = yield* openArchiveStream(archive, checksum, meter.update)
      const check = new RawImageCheck(rawRanges(readLines(manifestFile)), header.imageBytes)
      let written = 0

      const putBlock = (index: number, data: Buffer) =>
        awsCall("ebs:PutSnapshotBlock", (abortSignal) =>
          ebs.send(
            new PutSnapshotBlockCommand({
              SnapshotId: snapshotId,
              BlockIndex: index,
              BlockData: data,
              DataLength: data.length,
              Checksum: createHash("sha256").update(data).digest("base64"),
              ChecksumAlgorithm: "SHA256"
            }),
            { abortSignal }
          )
        ).pipe(Effect.tap(() => Effect.sync(() => (written += 1))))

      // Content: decompressed, cut into blocks, checked in order, the non-zero ones put several at a time.
      const writeBlocks = (content: Readable) =>
        Stream.fromAsyncIterable(blocksOf(content, EBS_BLOCK_BYTES), (error) => new OperationFailed({ message: String(error) })).pipe(
          Stream.tap((block) => Effect.sync(() => check.feed(block.data))),
          Stream.filter((block) => !isZero(block.data)),
          Stream.mapEffect((block) => putBlock(block.index, block.data), { concurrency: 8 }),
          Stream.runDrain
        )
      const runtime = yield* Effect.runtime<never>()
      const read = yield* Effect.tryPromise({
        try: () => readThrough(stream, header.compression, (content) => Runtime.runPromise(runtime)(writeBlocks(content))),
        catch: (error) => new OperationFailed({ message: `cannot read ${s3Url(location)}: ${error instanceof Error ? error.message : String(error)}` })
      })
      meter.finish()
      const problems = new ProblemList()
      problems.addAll(checksumProblems(header, archive, checksum))
      problems.addAll(objectProblems(header, archive))
      if (read.failure !== undefined) problems.add(`the restore stopped: ${read.failure}`)
      else problems.addAll(check.finish())
      if (problems.size > 0) {
        const deleted = yield* awsCall("ec2:DeleteSnapshot", (abortSignal) => ec2.send(new DeleteSnapshotCommand({ SnapshotId: snapshotId }), { abortSignal })).pipe(
          Effect.as(`it was deleted`),
          Effect.catchTag("AwsError", (error) => Effect.succeed(`it could not be deleted (${error.code}); AWS sets it to error after its 60-minute timeout`))
        )
        return yield* new CheckFailed({
          summary: `the restore of ${s3Url(location)} failed; snapshot ${snapshotId} was not completed and ${deleted}:`,
          problems: problems.toArray()
        })
      }
      yield* awsCall("ebs:CompleteSnapshot", (abortSignal) =>
        ebs.send(new CompleteSnapshotCommand({ SnapshotId: snapshotId, ChangedBlocksCount: written }), { abortSignal })
      )
      yield* waitCompleted(snapshotId)
      const readBackResult = yield* readBack(snapshotId, manifestFile, header.imageBytes)
      if (readBackResult.problems.length > 0) {
        return yield* new CheckFailed({ summary: `snapshot ${snapshotId} does not read back as the manifest says:`, problems: readBackResult.problems })
      }
      yield* Console.error(`restored ${s3Url(location)} to ${snapshotId}: ${written} blocks written and read back equal to the manifest`)
      yield* Console.log(snapshotId)
    })
  )
