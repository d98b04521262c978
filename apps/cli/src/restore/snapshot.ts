import { createHash, randomUUID } from "node:crypto"
import { join } from "node:path"
import type { Readable } from "node:stream"
import { CompleteSnapshotCommand, GetSnapshotBlockCommand, ListSnapshotBlocksCommand, PutSnapshotBlockCommand, StartSnapshotCommand, type Block } from "@aws-sdk/client-ebs"
import { DeleteSnapshotCommand, DescribeSnapshotsCommand } from "@aws-sdk/client-ec2"
import { Console, Duration, Effect, Runtime, Schedule, Schema, Stream } from "effect"
import { ProblemList, RawImageCheck, rawRanges, readLines } from "@backup-actions/archive"
import { Ebs, Ec2, awsCall } from "@backup-actions/aws"
import { CompositeChecksum, describeArchiveObject, openArchiveStream } from "../archive-object"
import { CheckFailed, OperationFailed, UsageError } from "../errors"
import { fetchManifest } from "../manifest"
import { Progress } from "../progress"
import { readThrough } from "../read-through"
import { manifestBeside, s3Url, type S3Location } from "../s3-url"
import { checksumProblems, objectProblems, scratchDirectory } from "../verify"
import { EBS_BLOCK_BYTES, blocksOf, isZero } from "./blocks"

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
