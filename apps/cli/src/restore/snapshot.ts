import { createHash, randomUUID } from "node:crypto"
import { join } from "node:path"
import type { Readable } from "node:stream"
import { CompleteSnapshotCommand, GetSnapshotBlockCommand, ListSnapshotBlocksCommand, PutSnapshotBlockCommand, StartSnapshotCommand, type Block } from "@aws-sdk/client-ebs"
import { DeleteSnapshotCommand, DescribeSnapshotsCommand } from "@aws-sdk/client-ec2"
import { DescribeKeyCommand } from "@aws-sdk/client-kms"
import { Console, Duration, Effect, Runtime, Schedule, Schema, Stream } from "effect"
import { BlockSet, ProblemList, RawImageCheck, blockSetProblems, rawRanges, readLines, type RawImageSource } from "@backup-actions/archive"
import { Ebs, Ec2, Kms, awsCall } from "@backup-actions/aws"
import { CompositeChecksum, describeArchiveObject, openArchiveStream } from "../archive-object"
import { CheckFailed, OperationFailed, UsageError } from "../errors"
import { fetchManifest } from "../manifest"
import { Progress } from "../progress"
import { readThrough } from "../read-through"
import { manifestBeside, s3Url, type S3Location } from "../s3-url"
import { checksumProblems, objectProblems, scratchDirectory } from "../verify"
import { EBS_BLOCK_BYTES, blocksOf, isZero, listedBlocks } from "./blocks"
import { RESTORED_FROM_TAG } from "../restored-names"

class SnapshotNotReady extends Schema.TaggedError<SnapshotNotReady>()("SnapshotNotReady", { state: Schema.String }) {}

const GiB = 1024 ** 3

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

/** Deletes a snapshot the restore made; says what became of it, for the message. */
const deleteSnapshot = (snapshotId: string) =>
  Effect.flatMap(Ec2, (ec2) => awsCall("ec2:DeleteSnapshot", (abortSignal) => ec2.send(new DeleteSnapshotCommand({ SnapshotId: snapshotId }), { abortSignal }))).pipe(
    Effect.as("it was deleted"),
    Effect.catchTag("AwsError", (error) => Effect.succeed(`it could not be deleted (${error.code}); AWS sets it to error after its 60-minute timeout`))
  )

const KEY_ARN = /^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key\/.+$/

/**
 * The ARN of a KMS key, which StartSnapshot takes: a key ARN as it is, anything else (key id,
 * alias name or alias ARN) through DescribeKey.
 */
export const kmsKeyArn = (key: string) =>
  KEY_ARN.test(key)
    ? Effect.succeed(key)
    : Effect.flatMap(Kms, (kms) => awsCall("kms:DescribeKey", (abortSignal) => kms.send(new DescribeKeyCommand({ KeyId: key }), { abortSignal }))).pipe(
        Effect.catchIf(
          (error) => error.kind === "not-found",
          (error) => Effect.fail(new OperationFailed({ message: `the KMS key "${key}" does not exist (${error.code})` }))
        ),
        Effect.flatMap((described) =>
          described.KeyMetadata?.Arn === undefined ? Effect.fail(new OperationFailed({ message: `DescribeKey of "${key}" answered no ARN` })) : Effect.succeed(described.KeyMetadata.Arn)
        )
      )

/**
 * How the new snapshot is encrypted: with the key named (--kms-key wins), else as the source
 * was (with the source's key, or EBS's default key when the manifest names none), else not.
 */
export const encryptionOf = (source: RawImageSource | undefined, namedKeyArn: string | undefined): { readonly Encrypted?: true; readonly KmsKeyArn?: string } => {
  if (namedKeyArn !== undefined) return { Encrypted: true, KmsKeyArn: namedKeyArn }
  if (source?.encrypted === true) return { Encrypted: true, ...(source.kmsKeyId === undefined ? {} : { KmsKeyArn: source.kmsKeyId }) }
  return {}
}

/** The new snapshot's size in GiB: the source's when the manifest records it, never less than the image. */
export const volumeSizeOf = (source: RawImageSource | undefined, imageBytes: number): number =>
  Math.max(source?.volumeSize ?? 0, Math.ceil(imageBytes / GiB), 1)

/**
 * Reads the snapshot back through the EBS direct APIs: the blocks it lists must be exactly the
 * blocks written (a block listed in the manifest but never written would not read as zeros on
 * an encrypted snapshot), and its content is checked against the manifest as a raw image (each
 * block's SHA-256 as EBS returns it; unlisted blocks, none of which was written, as zeros).
 * The listing is read a page at a time, so memory does not grow with the volume.
 */
const readBack = (snapshotId: string, manifestFile: string, imageBytes: number, written: BlockSet) =>
  Effect.gen(function* () {
    const ebs = yield* Ebs
    const inSnapshot = new BlockSet(written.capacity)
    const check = new RawImageCheck(rawRanges(readLines(manifestFile)), imageBytes)
    const problems = new ProblemList()
    let position = 0
    let token: string | undefined
    do {
      const page = yield* awsCall("ebs:ListSnapshotBlocks", (abortSignal) =>
        ebs.send(new ListSnapshotBlocksCommand({ SnapshotId: snapshotId, NextToken: token }), { abortSignal })
      )
      // The check reads in index order, which not every EBS endpoint lists in.
      const blocks: Array<Block> = []
      for (const block of [...(page.Blocks ?? [])].sort((left, right) => (left.BlockIndex ?? 0) - (right.BlockIndex ?? 0))) {
        const index = block.BlockIndex ?? -1
        if (!inSnapshot.add(index)) problems.add(`block ${index} of ${snapshotId} lies outside the image's ${written.capacity} blocks`)
        else if (index * EBS_BLOCK_BYTES < position) problems.add(`block ${index} of ${snapshotId} is listed after a block with a higher index`)
        else blocks.push(block)
      }
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
      token = page.NextToken
    } while (token !== undefined)
    if (position < imageBytes) check.feed({ zeros: imageBytes - position })
    problems.addAll(blockSetProblems(written, inSnapshot, snapshotId))
    problems.addAll(check.finish())
    return { problems: problems.toArray(), blocks: inSnapshot.size }
  })

/** What a restore to a snapshot made. */
export interface RestoredSnapshot {
  readonly snapshotId: string
  readonly blocksWritten: number
  /** The image's size. */
  readonly bytes: number
  /** The key the snapshot is encrypted with; undefined when it is not encrypted, or with EBS's default key. */
  readonly kmsKeyArn: string | undefined
  readonly encrypted: boolean
}

/**
 * A raw image written as a new EBS snapshot (StartSnapshot, PutSnapshotBlock, CompleteSnapshot),
 * then read back; prints nothing, so that a drill can run it. Written: every block the
 * manifest lists (direct mode lists each block the source held, zeros included: on an
 * encrypted snapshot a block never written does not read back as zeros) and every other block
 * that is not all zeros. Encrypted as `encryptionOf` says, sized as `volumeSizeOf` says. A
 * snapshot whose data did not check out, or that does not read back as the manifest says, is
 * deleted, and so is one left behind by any other failure.
 */
export const restoreToSnapshot = (location: S3Location, options: { readonly kmsKeyId?: string | undefined } = {}) =>
  Effect.scoped(
    Effect.gen(function* () {
      const progress = yield* Progress
      const ebs = yield* Ebs
      const scratch = yield* scratchDirectory
      const manifestFile = join(scratch, "manifest.ndjson")
      const header = yield* fetchManifest(manifestBeside(location), manifestFile)
      if (header.kind !== "backup-actions/raw-image-manifest") {
        return yield* new UsageError({ message: `${s3Url(location)} is a tar of files, not a disk image: restore it with --to <directory>`, command: "restore" })
      }
      if (header.imageBytes % EBS_BLOCK_BYTES !== 0) {
        return yield* new OperationFailed({ message: `the image is ${header.imageBytes} bytes, not a whole number of 512 KiB EBS blocks` })
      }
      const namedKey = options.kmsKeyId === undefined ? undefined : yield* kmsKeyArn(options.kmsKeyId)
      const encryption = encryptionOf(header.source, namedKey)
      const archive = yield* describeArchiveObject(location)
      const totalBlocks = header.imageBytes / EBS_BLOCK_BYTES
      const listed = yield* Effect.try({
        try: () => listedBlocks(rawRanges(readLines(manifestFile)), header.imageBytes),
        catch: (error) => new OperationFailed({ message: `${s3Url(manifestBeside(location))}: ${error instanceof Error ? error.message : String(error)}` })
      })
      const started = yield* awsCall("ebs:StartSnapshot", (abortSignal) =>
        ebs.send(
          new StartSnapshotCommand({
            VolumeSize: volumeSizeOf(header.source, header.imageBytes),
            Description: `restored from ${s3Url(location)}`,
            Tags: [{ Key: RESTORED_FROM_TAG, Value: s3Url(location) }],
            ClientToken: randomUUID(),
            Timeout: 60,
            ...encryption
          }),
          { abortSignal }
        )
      )
      const snapshotId = started.SnapshotId ?? ""
      let deleted: string | undefined
      const discard = Effect.suspend(() => (deleted !== undefined ? Effect.succeed(deleted) : deleteSnapshot(snapshotId).pipe(Effect.tap((said) => Effect.sync(() => (deleted = said))))))

      const body = Effect.gen(function* () {
        const meter = yield* progress.meter(`restore ${location.key} to ${snapshotId}`, archive.size)
        const checksum = new CompositeChecksum(archive.partSizes)
        const stream = yield* openArchiveStream(archive, checksum, meter.update)
        const check = new RawImageCheck(rawRanges(readLines(manifestFile)), header.imageBytes)
        const written = new BlockSet(totalBlocks)

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
          ).pipe(Effect.tap(() => Effect.sync(() => written.add(index))))

        // Content: decompressed, cut into blocks, checked in order; listed and non-zero ones put several at a time.
        const writeBlocks = (content: Readable) =>
          Stream.fromAsyncIterable(blocksOf(content, EBS_BLOCK_BYTES), (error) => new OperationFailed({ message: String(error) })).pipe(
            Stream.tap((block) => Effect.sync(() => check.feed(block.data))),
            Stream.filter((block) => block.index < totalBlocks && (listed.has(block.index) || !isZero(block.data))),
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
          const said = yield* discard
          return yield* new CheckFailed({
            summary: `the restore of ${s3Url(location)} failed; snapshot ${snapshotId} was not completed and ${said}:`,
            problems: problems.toArray()
          })
        }
        yield* awsCall("ebs:CompleteSnapshot", (abortSignal) =>
          ebs.send(new CompleteSnapshotCommand({ SnapshotId: snapshotId, ChangedBlocksCount: written.size }), { abortSignal })
        )
        yield* waitCompleted(snapshotId)
        const readBackResult = yield* readBack(snapshotId, manifestFile, header.imageBytes, written)
        if (readBackResult.problems.length > 0) {
          const said = yield* discard
          return yield* new CheckFailed({ summary: `snapshot ${snapshotId} does not read back as the manifest says; ${said}:`, problems: readBackResult.problems })
        }
        const restored: RestoredSnapshot = {
          snapshotId,
          blocksWritten: written.size,
          bytes: header.imageBytes,
          encrypted: encryption.Encrypted === true,
          kmsKeyArn: encryption.KmsKeyArn
        }
        return restored
      })
      // Anything else that ends the restore (an AWS error, an interruption) leaves no half-written snapshot either.
      return yield* body.pipe(Effect.onError(() => Effect.asVoid(discard)))
    })
  )

const describeEncryption = (restored: RestoredSnapshot): string =>
  !restored.encrypted ? "not encrypted" : restored.kmsKeyArn === undefined ? "encrypted with EBS's default key" : `encrypted with ${restored.kmsKeyArn}`

/**
 * `restore --to-snapshot [--kms-key <key>]`: restoreToSnapshot, then the new snapshot's id on
 * stdout and what was done on stderr.
 */
export const restoreSnapshotCommand = (location: S3Location, kmsKeyId: string | undefined) =>
  Effect.gen(function* () {
    const restored = yield* restoreToSnapshot(location, { kmsKeyId })
    yield* Console.error(
      `restored ${s3Url(location)} to ${restored.snapshotId} (${describeEncryption(restored)}): ${restored.blocksWritten} blocks written and read back equal to the manifest`
    )
    yield* Console.log(restored.snapshotId)
  }).pipe(Effect.provide(Kms.Live))
