import { createHash, randomBytes } from "node:crypto"
import { Readable } from "node:stream"
import { assert, describe, it } from "@effect/vitest"
import { EBSClient, GetSnapshotBlockCommand, ListSnapshotBlocksCommand, type ChecksumAlgorithm } from "@aws-sdk/client-ebs"
import { DescribeSnapshotsCommand, EC2Client } from "@aws-sdk/client-ec2"
import { mockClient } from "aws-sdk-client-mock"
import { Effect, Layer, Option, type Scope } from "effect"
import { Ebs, Ec2 } from "@backup-actions/aws"
import type { ChunkSource } from "./archive-pipeline"
import { BlockChecksumMismatch, BlockWithoutChecksum, EBS_BLOCK_SIZE, HOLE_RUN_CHUNKS, UnsupportedBlockLayout, openEbsDirectSource, readBlock } from "./ebs-direct-source"

// The EBS direct APIs are mocked rather than emulated: the emulator cannot be made to answer a
// block without its checksum, and these tests are about the exact shapes of those answers.

const REGION = "us-east-1"
const SNAPSHOT_ID = "snap-0123456789abcdef0"
const BLOCK = { BlockIndex: 7, BlockToken: "token-of-block-7" }

/** Clients whose `send` the returned mocks answer, and the layer that provides them. */
const mockedClients = () => {
  const credentials = { accessKeyId: "x", secretAccessKey: "y" }
  const ebs = new EBSClient({ region: REGION, credentials })
  const ec2 = new EC2Client({ region: REGION, credentials })
  return {
    ebs: mockClient(ebs),
    ec2: mockClient(ec2),
    layer: Layer.merge(Layer.succeed(Ebs, ebs), Layer.succeed(Ec2, ec2))
  }
}

/** A GetSnapshotBlock body as the SDK hands it over: a stream with its transform helpers. */
const blockData = (bytes: Buffer) =>
  Object.assign(Readable.from([bytes]), {
    transformToByteArray: () => Promise.resolve(new Uint8Array(bytes)),
    transformToString: (encoding?: string) => Promise.resolve(new TextDecoder(encoding).decode(bytes)),
    transformToWebStream: () =>
      new ReadableStream<Uint8Array>({
        start: (controller) => {
          controller.enqueue(new Uint8Array(bytes))
          controller.close()
        }
      })
  })

const sha256 = (bytes: Buffer) => createHash("sha256").update(bytes).digest("base64")

const expectedGet = { SnapshotId: SNAPSHOT_ID, BlockIndex: BLOCK.BlockIndex, BlockToken: BLOCK.BlockToken }

describe("reading one block of a snapshot", () => {
  it.effect("returns the block's data and its base64 SHA-256 when the checksum EBS sent matches", () =>
    Effect.gen(function* () {
      // Prepare
      const mocks = mockedClients()
      const bytes = randomBytes(EBS_BLOCK_SIZE)
      mocks.ebs.on(GetSnapshotBlockCommand).resolves({ BlockData: blockData(bytes), DataLength: bytes.length, Checksum: sha256(bytes), ChecksumAlgorithm: "SHA256" })
      // Act
      const block = yield* readBlock(SNAPSHOT_ID, BLOCK).pipe(Effect.provide(mocks.layer))
      // Assess
      assert.strictEqual(block.index, BLOCK.BlockIndex)
      assert.isTrue(block.data.equals(bytes))
      assert.strictEqual(block.sha256, sha256(bytes))
      assert.deepStrictEqual(mocks.ebs.commandCalls(GetSnapshotBlockCommand).map((call) => call.args[0].input), [expectedGet])
    })
  )

  it.effect("refuses a block that comes without a checksum, naming the algorithm EBS gave", () =>
    Effect.gen(function* () {
      // Prepare
      const mocks = mockedClients()
      const bytes = randomBytes(EBS_BLOCK_SIZE)
      mocks.ebs.on(GetSnapshotBlockCommand).resolves({ BlockData: blockData(bytes), DataLength: bytes.length, ChecksumAlgorithm: "SHA256" })
      // Act
      const error = yield* Effect.flip(readBlock(SNAPSHOT_ID, BLOCK)).pipe(Effect.provide(mocks.layer))
      // Assess: refused at once, not read again
      assert.instanceOf(error, BlockWithoutChecksum)
      assert.deepStrictEqual(error, new BlockWithoutChecksum({ snapshotId: SNAPSHOT_ID, blockIndex: BLOCK.BlockIndex, algorithm: "SHA256" }))
      assert.deepStrictEqual(mocks.ebs.commandCalls(GetSnapshotBlockCommand).map((call) => call.args[0].input), [expectedGet])
    })
  )

  it.effect("refuses a block whose checksum comes without an algorithm", () =>
    Effect.gen(function* () {
      // Prepare
      const mocks = mockedClients()
      const bytes = randomBytes(EBS_BLOCK_SIZE)
      mocks.ebs.on(GetSnapshotBlockCommand).resolves({ BlockData: blockData(bytes), DataLength: bytes.length, Checksum: sha256(bytes) })
      // Act
      const error = yield* Effect.flip(readBlock(SNAPSHOT_ID, BLOCK)).pipe(Effect.provide(mocks.layer))
      // Assess
      assert.instanceOf(error, BlockWithoutChecksum)
      assert.deepStrictEqual(error, new BlockWithoutChecksum({ snapshotId: SNAPSHOT_ID, blockIndex: BLOCK.BlockIndex }))
      assert.isFalse("algorithm" in error)
      assert.strictEqual(mocks.ebs.commandCalls(GetSnapshotBlockCommand).length, 1)
    })
  )

  it.effect("refuses a block whose checksum is of another algorithm than SHA-256", () =>
    Effect.gen(function* () {
      // Prepare: the SDK passes on whatever algorithm the response header names, known to its types or not
      const mocks = mockedClients()
      const bytes = randomBytes(EBS_BLOCK_SIZE)
      const otherAlgorithm = "SHA512" as string as ChecksumAlgorithm
      mocks.ebs.on(GetSnapshotBlockCommand).resolves({ BlockData: blockData(bytes), DataLength: bytes.length, Checksum: sha256(bytes), ChecksumAlgorithm: otherAlgorithm })
      // Act
      const error = yield* Effect.flip(readBlock(SNAPSHOT_ID, BLOCK)).pipe(Effect.provide(mocks.layer))
      // Assess
      assert.instanceOf(error, BlockWithoutChecksum)
      assert.deepStrictEqual(error, new BlockWithoutChecksum({ snapshotId: SNAPSHOT_ID, blockIndex: BLOCK.BlockIndex, algorithm: "SHA512" }))
      assert.strictEqual(mocks.ebs.commandCalls(GetSnapshotBlockCommand).length, 1)
    })
  )

  // The re-reads wait a real (short) backoff between them: live clock.
  it.live("fails with a checksum mismatch when every read of the block differs from its checksum", () =>
    Effect.gen(function* () {
      // Prepare
      const mocks = mockedClients()
      const bytes = randomBytes(EBS_BLOCK_SIZE)
      const claimed = sha256(randomBytes(32))
      mocks.ebs.on(GetSnapshotBlockCommand).callsFake(() => ({ BlockData: blockData(bytes), DataLength: bytes.length, Checksum: claimed, ChecksumAlgorithm: "SHA256" }))
      // Act
      const error = yield* Effect.flip(readBlock(SNAPSHOT_ID, BLOCK)).pipe(Effect.provide(mocks.layer))
      // Assess: the first read and its three re-reads, each of the same block
      assert.instanceOf(error, BlockChecksumMismatch)
      assert.deepStrictEqual(error, new BlockChecksumMismatch({ snapshotId: SNAPSHOT_ID, blockIndex: BLOCK.BlockIndex, expected: claimed, actual: sha256(bytes) }))
      assert.deepStrictEqual(mocks.ebs.commandCalls(GetSnapshotBlockCommand).map((call) => call.args[0].input), [expectedGet, expectedGet, expectedGet, expectedGet])
    })
  )
})

describe("opening a snapshot for direct reading", () => {
  const volumeSizes = [
    { name: "without a volume size", listing: {} },
    { name: "with a volume size of 0", listing: { VolumeSize: 0 } }
  ]
  for (const { name, listing } of volumeSizes) {
    it.effect(`refuses a completed snapshot whose block listing comes ${name}`, () =>
      Effect.gen(function* () {
        // Prepare
        const mocks = mockedClients()
        mocks.ec2.on(DescribeSnapshotsCommand).resolves({ Snapshots: [{ SnapshotId: SNAPSHOT_ID, State: "completed", VolumeSize: 1 }] })
        mocks.ebs.on(ListSnapshotBlocksCommand).resolves({ ...listing, BlockSize: EBS_BLOCK_SIZE, Blocks: [BLOCK] })
        // Act
        const error = yield* Effect.flip(openEbsDirectSource(SNAPSHOT_ID)).pipe(Effect.provide(mocks.layer))
        // Assess: refused before any block is read
        assert.instanceOf(error, UnsupportedBlockLayout)
        assert.strictEqual(error.snapshotId, SNAPSHOT_ID)
        assert.match(error.reason, /no volume size .*the image's size is unknown/)
        assert.deepStrictEqual(mocks.ec2.commandCalls(DescribeSnapshotsCommand).map((call) => call.args[0].input), [
          { Filters: [{ Name: "snapshot-id", Values: [SNAPSHOT_ID] }] }
        ])
        assert.deepStrictEqual(mocks.ebs.commandCalls(ListSnapshotBlocksCommand).map((call) => call.args[0].input), [
          { SnapshotId: SNAPSHOT_ID, MaxResults: 10_000, StartingBlockIndex: 0, NextToken: undefined }
        ])
        assert.strictEqual(mocks.ebs.commandCalls(GetSnapshotBlockCommand).length, 0)
      })
    )
  }
})

/** Every job a source gives, in order: the chunks each stands for, and whether it read bytes. */
const jobsOf = (open: (offset: number) => Effect.Effect<ChunkSource<unknown>, unknown, Ebs | Scope.Scope>, offset: number) =>
  Effect.scoped(
    Effect.gen(function* () {
      const source = yield* open(offset)
      const jobs: Array<{ readonly chunks: number; readonly inputBytes: number; readonly data: boolean }> = []
      while (true) {
        const job = yield* source.pull
        if (Option.isNone(job)) return jobs
        const produced = yield* job.value.produce
        jobs.push({ chunks: job.value.chunks ?? 1, inputBytes: job.value.inputBytes, data: Option.isSome(produced.bytes) })
      }
    })
  )

describe("reading a sparse snapshot", () => {
  /** A 1 GiB snapshot (256 chunks of 8 blocks) listing block 0 on a first page and block 803 (chunk 100) on a second. */
  const sparseSnapshot = () => {
    const mocks = mockedClients()
    const bytes = randomBytes(EBS_BLOCK_SIZE)
    mocks.ec2.on(DescribeSnapshotsCommand).resolves({ Snapshots: [{ SnapshotId: SNAPSHOT_ID, State: "completed", VolumeSize: 1 }] })
    // Answered as the SDK would, asynchronously: the listing is sent without an async wrapper.
    mocks.ebs.on(ListSnapshotBlocksCommand).callsFake(async (input: { readonly NextToken?: string; readonly StartingBlockIndex?: number }) => {
      const pages = [[{ BlockIndex: 0, BlockToken: "token-0" }], [{ BlockIndex: 803, BlockToken: "token-803" }]]
      const listed = input.NextToken === "page-2" ? pages[1] : pages[0]
      return await Promise.resolve({
        VolumeSize: 1,
        BlockSize: EBS_BLOCK_SIZE,
        Blocks: (listed ?? []).filter((block) => block.BlockIndex >= (input.StartingBlockIndex ?? 0)),
        ...(input.NextToken === "page-2" ? {} : { NextToken: "page-2" })
      })
    })
    mocks.ebs.on(GetSnapshotBlockCommand).callsFake(() => ({ BlockData: blockData(bytes), DataLength: bytes.length, Checksum: sha256(bytes), ChecksumAlgorithm: "SHA256" }))
    return mocks
  }

  it.effect("gives each run of holes as one job that stands for its chunks, up to the chunk of the next listed block", () =>
    Effect.gen(function* () {
      // Prepare
      const mocks = sparseSnapshot()
      // Act
      const { open } = yield* openEbsDirectSource(SNAPSHOT_ID).pipe(Effect.provide(mocks.layer))
      const jobs = yield* jobsOf(open, 0).pipe(Effect.provide(mocks.layer))
      // Assess: chunk 0, the holes of chunks 1-99, chunk 100, the holes to the end; 1 GiB in all
      const chunk = 4 * 1024 * 1024
      assert.deepStrictEqual(jobs, [
        { chunks: 1, inputBytes: chunk, data: true },
        { chunks: 99, inputBytes: chunk, data: false },
        { chunks: 1, inputBytes: chunk, data: true },
        { chunks: 155, inputBytes: chunk, data: false }
      ])
      assert.strictEqual(jobs.reduce((total, job) => total + job.chunks * job.inputBytes, 0), 1024 ** 3)
    })
  )

  it.effect("starts a resumed read's first run of holes at the resume point", () =>
    Effect.gen(function* () {
      // Prepare
      const mocks = sparseSnapshot()
      // Act: resume at chunk 50
      const { open } = yield* openEbsDirectSource(SNAPSHOT_ID).pipe(Effect.provide(mocks.layer))
      const jobs = yield* jobsOf(open, 50 * 4 * 1024 * 1024).pipe(Effect.provide(mocks.layer))
      // Assess
      assert.deepStrictEqual(
        jobs.map((job) => [job.chunks, job.data]),
        [[50, false], [1, true], [155, false]]
      )
    })
  )

  it.effect("splits a long run of holes into runs of at most 64 GiB", () =>
    Effect.gen(function* () {
      // Prepare: a 160 GiB snapshot with no block written
      const mocks = mockedClients()
      mocks.ec2.on(DescribeSnapshotsCommand).resolves({ Snapshots: [{ SnapshotId: SNAPSHOT_ID, State: "completed", VolumeSize: 160 }] })
      mocks.ebs.on(ListSnapshotBlocksCommand).resolves({ VolumeSize: 160, BlockSize: EBS_BLOCK_SIZE, Blocks: [] })
      // Act
      const { open } = yield* openEbsDirectSource(SNAPSHOT_ID).pipe(Effect.provide(mocks.layer))
      const jobs = yield* jobsOf(open, 0).pipe(Effect.provide(mocks.layer))
      // Assess
      assert.deepStrictEqual(
        jobs.map((job) => job.chunks),
        [HOLE_RUN_CHUNKS, HOLE_RUN_CHUNKS, 160 * 256 - 2 * HOLE_RUN_CHUNKS]
      )
      assert.isTrue(jobs.every((job) => !job.data))
    })
  )
})
