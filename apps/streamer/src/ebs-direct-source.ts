import { createHash } from "node:crypto"
import { GetSnapshotBlockCommand, ListSnapshotBlocksCommand, type Block } from "@aws-sdk/client-ebs"
import { Duration, Effect, Option, Schedule, Schema } from "effect"
import { DescribeSnapshotsCommand } from "@aws-sdk/client-ec2"
import { AwsError, Ebs, Ec2, awsCall } from "@backup-actions/aws"
import type { ChunkJob, ChunkSource } from "./archive-pipeline"

/** The size of the blocks AWS stores EBS snapshots in. */
export const EBS_BLOCK_SIZE = 512 * 1024
/** Input chunk: one compressed frame each. Eight EBS blocks. */
export const CHUNK_BYTES = 4 * 1024 * 1024
/**
 * The most chunks of holes one job stands for (64 GiB): a sparse volume's unwritten runs cost
 * one job each rather than one per chunk, while gathering one run's frames stays short.
 */
export const HOLE_RUN_CHUNKS = 16_384

export class BlockChecksumMismatch extends Schema.TaggedError<BlockChecksumMismatch>()("BlockChecksumMismatch", {
  snapshotId: Schema.String,
  blockIndex: Schema.Number,
  expected: Schema.String,
  actual: Schema.String
}) {}

/** EBS returned a block without a SHA-256 to check it against: it is not archived unchecked. */
export class BlockWithoutChecksum extends Schema.TaggedError<BlockWithoutChecksum>()("BlockWithoutChecksum", {
  snapshotId: Schema.String,
  blockIndex: Schema.Number,
  /** The algorithm EBS named, if any. */
  algorithm: Schema.optional(Schema.String)
}) {}

export class UnsupportedBlockLayout extends Schema.TaggedError<UnsupportedBlockLayout>()("UnsupportedBlockLayout", {
  snapshotId: Schema.String,
  reason: Schema.String
}) {}

export type EbsSourceError = AwsError | BlockChecksumMismatch | BlockWithoutChecksum | UnsupportedBlockLayout

export interface SnapshotLayout {
  readonly snapshotId: string
  readonly volumeBytes: number
  readonly blockSize: number
  /** Blocks that hold data; every other block reads as zeros. */
  readonly listedBlocks: number
}

const listPage = (snapshotId: string, startingBlockIndex: number, nextToken: string | undefined) =>
  Effect.flatMap(Ebs, (ebs) =>
    awsCall("ebs:ListSnapshotBlocks", (abortSignal) =>
      ebs.send(
        new ListSnapshotBlocksCommand({
          SnapshotId: snapshotId,
          MaxResults: 10_000,
          StartingBlockIndex: startingBlockIndex,
          NextToken: nextToken
        }),
        { abortSignal }
      )
    )
  )

/**
 * Reads one block and checks it against the SHA-256 that EBS returns with it; a mismatch is
 * read again. That checksum is what the manifest records and what the archive's content is
 * verified against, so a block that comes without one fails the archive.
 */
export const readBlock = (snapshotId: string, block: Block) =>
  Effect.gen(function* () {
    const ebs = yield* Ebs
    const index = block.BlockIndex ?? 0
    const response = yield* awsCall("ebs:GetSnapshotBlock", async (abortSignal) => {
      const result = await ebs.send(
        new GetSnapshotBlockCommand({ SnapshotId: snapshotId, BlockIndex: index, BlockToken: block.BlockToken }),
        { abortSignal }
      )
      const data = result.BlockData === undefined ? new Uint8Array(0) : await result.BlockData.transformToByteArray()
      return { data: Buffer.from(data.buffer, data.byteOffset, data.byteLength), checksum: result.Checksum, algorithm: result.ChecksumAlgorithm }
    })
    if (response.checksum === undefined || response.algorithm !== "SHA256") {
      return yield* new BlockWithoutChecksum({ snapshotId, blockIndex: index, ...(response.algorithm === undefined ? {} : { algorithm: response.algorithm }) })
    }
    const actual = createHash("sha256").update(response.data).digest("base64")
    if (response.checksum !== actual) {
      return yield* new BlockChecksumMismatch({ snapshotId, blockIndex: index, expected: response.checksum, actual })
    }
    return { index, data: response.data, sha256: actual }
  }).pipe(
    Effect.retry({ schedule: Schedule.exponential(Duration.millis(100)).pipe(Schedule.jittered), times: 3, while: (error) => error._tag === "BlockChecksumMismatch" })
  )

/**
 * A snapshot read through the EBS direct APIs as a sequence of 4 MiB chunks of its raw
 * image: listed blocks are fetched concurrently (a bounded window) and checked, unlisted
 * blocks are zeros. The listing is paged, so memory does not grow with the volume.
 */
export const openEbsDirectSource = (snapshotId: string, options: { readonly blockConcurrency?: number } = {}) =>
  Effect.gen(function* () {
    // A snapshot that is gone (deleted, or never there) ends here with a clear reason, rather
    // than in whatever error the EBS direct APIs answer a read of a missing snapshot with.
    const ec2 = yield* Ec2
    const described = yield* awsCall("ec2:DescribeSnapshots", (abortSignal) =>
      ec2.send(new DescribeSnapshotsCommand({ Filters: [{ Name: "snapshot-id", Values: [snapshotId] }] }), { abortSignal })
    )
    const state = described.Snapshots?.[0]?.State
    if (state === undefined) {
      return yield* new UnsupportedBlockLayout({ snapshotId, reason: "the snapshot does not exist" })
    }
    if (state !== "completed") {
      return yield* new UnsupportedBlockLayout({ snapshotId, reason: `the snapshot is ${state}, not completed` })
    }
    const first = yield* listPage(snapshotId, 0, undefined)
    // Without its size, the image would end at the last listed block, or be empty.
    if (first.VolumeSize === undefined || first.VolumeSize <= 0) {
      return yield* new UnsupportedBlockLayout({ snapshotId, reason: `ListSnapshotBlocks reports no volume size (${String(first.VolumeSize)}), so the image's size is unknown` })
    }
    const volumeBytes = first.VolumeSize * 1024 ** 3
    // The block size is the size of the data a block holds, whatever BlockSize the listing reports.
    const reported = first.BlockSize ?? EBS_BLOCK_SIZE
    const firstBlock = first.Blocks?.[0]
    const blockSize = firstBlock === undefined ? EBS_BLOCK_SIZE : (yield* readBlock(snapshotId, firstBlock)).data.length
    if (blockSize !== reported) {
      yield* Effect.logWarning(`snapshot ${snapshotId}: ListSnapshotBlocks reports BlockSize ${reported}, blocks hold ${blockSize} bytes; using ${blockSize}`)
    }
    if (blockSize <= 0 || CHUNK_BYTES % blockSize !== 0) {
      return yield* new UnsupportedBlockLayout({ snapshotId, reason: `block size ${blockSize} does not divide the ${CHUNK_BYTES}-byte chunk` })
    }
    const blocksPerChunk = CHUNK_BYTES / blockSize
    const totalChunks = Math.ceil(volumeBytes / CHUNK_BYTES)
    const layout: SnapshotLayout = { snapshotId, volumeBytes, blockSize, listedBlocks: first.Blocks?.length ?? 0 }

    const open = (inputOffset: number): Effect.Effect<ChunkSource<EbsSourceError>, EbsSourceError, Ebs> =>
      Effect.gen(function* () {
        const ebs = yield* Ebs
        if (inputOffset % CHUNK_BYTES !== 0) {
          return yield* new UnsupportedBlockLayout({ snapshotId, reason: `resume offset ${inputOffset} is not on a chunk boundary` })
        }
        let chunk = inputOffset / CHUNK_BYTES
        const startBlock = chunk * blocksPerChunk
        // Paged cursor over the listed blocks, from the resume point on.
        let page: Array<Block> = []
        let nextToken: string | undefined
        let exhausted = false
        const fillPage = Effect.gen(function* () {
          const next = yield* listPage(snapshotId, startBlock, nextToken).pipe(Effect.provideService(Ebs, ebs))
          // Sorted, so that a listing in another order than the blocks' indexes reads the same.
          page = (next.Blocks ?? [])
            .filter((block) => (block.BlockIndex ?? 0) >= startBlock)
            .sort((a, b) => (a.BlockIndex ?? 0) - (b.BlockIndex ?? 0))
          nextToken = next.NextToken
          exhausted = nextToken === undefined
        })
        yield* fillPage
        /** The index of the next listed block not yet taken, or undefined when there is none. */
        const nextListed = Effect.gen(function* () {
          while (page.length === 0 && !exhausted) yield* fillPage
          return page[0]?.BlockIndex
        })
        const wholeChunks = Math.floor(volumeBytes / CHUNK_BYTES)
        const blocksBefore = (limit: number) =>
          Effect.gen(function* () {
            const taken: Array<Block> = []
            while (true) {
              while (page.length > 0 && (page[0]?.BlockIndex ?? 0) < limit) taken.push(page.shift() as Block)
              if (page.length > 0 || exhausted) return taken
              yield* fillPage
            }
          })
        const source: ChunkSource<EbsSourceError> = {
          pull: Effect.gen(function* () {
            if (chunk >= totalChunks) return Option.none()
            const index = chunk
            chunk += 1
            const offset = index * CHUNK_BYTES
            const inputBytes = Math.min(CHUNK_BYTES, volumeBytes - offset)
            const blocks = yield* blocksBefore((index + 1) * blocksPerChunk)
            if (blocks.length === 0 && inputBytes === CHUNK_BYTES) {
              // A hole: it runs to the chunk of the next listed block, or to the last whole chunk.
              const next = yield* nextListed
              const end = Math.min(next === undefined ? wholeChunks : Math.floor(next / blocksPerChunk), wholeChunks, index + HOLE_RUN_CHUNKS)
              const chunks = Math.max(1, end - index)
              chunk = index + chunks
              const hole: ChunkJob<EbsSourceError> = { inputBytes, chunks, produce: Effect.succeed({ bytes: Option.none(), manifestLines: [] }) }
              return Option.some(hole)
            }
            const job: ChunkJob<EbsSourceError> = {
              inputBytes,
              produce:
                blocks.length === 0
                  ? Effect.succeed({ bytes: Option.none(), manifestLines: [] })
                  : Effect.gen(function* () {
                      const read = yield* Effect.forEach(blocks, (block) => readBlock(snapshotId, block), {
                        concurrency: options.blockConcurrency ?? blocksPerChunk
                      })
                      const bytes = Buffer.alloc(inputBytes)
                      for (const block of read) block.data.copy(bytes, block.index * blockSize - offset)
                      const manifestLines = read.map((block) =>
                        JSON.stringify({ block: block.index, offset: block.index * blockSize, length: block.data.length, sha256: block.sha256 })
                      )
                      return { bytes: Option.some(bytes), manifestLines }
                    }).pipe(Effect.provideService(Ebs, ebs))
            }
            return Option.some(job)
          })
        }
        return source
      })

    return { layout, open }
  })
