import { randomBytes } from "node:crypto"
import { afterAll, afterEach, assert, beforeAll, describe, it } from "@effect/vitest"
import { HeadObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3"
import { Effect } from "effect"
import { COMPRESSED_FRAME_POINT, FAILPOINTS_VARIABLE, S3, awsCall } from "@backup-actions/aws"
import { ArchiveCompleted, type ArchivePlan, type DetailOf } from "@backup-actions/contracts"
import { directPlanHandOff, testEnvelope } from "@backup-actions/contracts/testing"
import type { Policy } from "@backup-actions/config"
import { EMULATOR_ACCOUNT, EMULATOR_REGION, type ServiceHarness, type Tap, startServiceHarness } from "@backup-actions/local"
import { streamContentCheck } from "./content-check"
import { readArchiveBack } from "./read-back"
import { StreamerServices, onRestoreCompleted } from "./service"
import { snapshotExists, snapshotOfData } from "./test-support"

let harness: ServiceHarness
let published: Tap

const policy: Policy = { rules: [] }

beforeAll(async () => {
  harness = await startServiceHarness({ prefix: "content-verification-test", service: "streamer" })
  published = await harness.tapBus(ArchiveCompleted.pattern(), "archives")
})
afterAll(() => harness.stop())
afterEach(() => {
  delete process.env[FAILPOINTS_VARIABLE]
})

const streamerLayer = () => harness.layer(StreamerServices, policy)
const envelope = testEnvelope(EMULATOR_ACCOUNT, EMULATOR_REGION)
const deletingPlan = (compression: ArchivePlan["compression"]): ArchivePlan => ({ rule: "archive-and-delete", mode: "direct", compression, deleteSourceAfterVerify: true })

const announcedFor = (recoveryPointArn: string) =>
  Effect.map(published.drain(1), (bodies) =>
    bodies.map((body): { detail: DetailOf<typeof ArchiveCompleted> } => JSON.parse(body)).map(({ detail }) => detail).filter((detail) => detail.correlationId === recoveryPointArn)
  )

describe("content verification before the source is deleted", () => {
  for (const compression of ["zstd", "gzip"] as const) {
    it.live(`keeps the source and fails the archive when a ${compression} frame is replaced by a valid frame of other data, although every S3 checksum holds`, () =>
      Effect.gen(function* () {
        // Prepare: a snapshot with data, a plan that deletes it once verified, and the first frame made from other bytes
        const source = yield* snapshotOfData
        process.env[FAILPOINTS_VARIABLE] = `${COMPRESSED_FRAME_POINT}=corrupt*1`
        // Act
        yield* onRestoreCompleted(directPlanHandOff(envelope, `corrupt-${compression}`, source.recoveryPointArn, source.snapshotId, deletingPlan(compression)))
        // Assess: S3 holds what was sent (its checksum is the composite the streamer computed) ...
        const [detail] = yield* announcedFor(source.recoveryPointArn)
        assert.isDefined(detail)
        if (detail === undefined) return
        const s3 = yield* S3
        const head = yield* awsCall("s3:HeadObject", (abortSignal) =>
          s3.send(new HeadObjectCommand({ Bucket: harness.stack.artifactBucket, Key: detail.location?.key ?? "", ChecksumMode: "ENABLED" }), { abortSignal })
        )
        assert.strictEqual(head.ChecksumSHA256?.split("-")[0], detail.checksum?.value.split("-")[0])
        // ... but the content read back is not the source's: the archive failed, verified only as an upload, and the source is kept
        assert.deepStrictEqual([detail.status, detail.verified, detail.sourceDeleted], ["failed", "upload", false])
        // (the frame made from other bytes is whichever was compressed first: a block's, or the frame of a hole's zeros)
        assert.match(
          detail.reason ?? "",
          /^the archive read back differs from its source: (block \d+ \(offset \d+\): SHA-256 \S+ differs from the manifest's \S+|byte \d+ is not zero, but the manifest lists no data there)/
        )
        assert.isTrue(yield* snapshotExists(source.snapshotId))
      }).pipe(Effect.provide(streamerLayer()))
    )
  }

  it.live("deletes the source once the content read back matches it", () =>
    Effect.gen(function* () {
      // Prepare
      const source = yield* snapshotOfData
      // Act
      yield* onRestoreCompleted(directPlanHandOff(envelope, "intact", source.recoveryPointArn, source.snapshotId, deletingPlan("zstd")))
      // Assess
      const [detail] = yield* announcedFor(source.recoveryPointArn)
      assert.deepStrictEqual([detail?.status, detail?.verified, detail?.sourceDeleted], ["archived", "content", true])
      assert.isFalse(yield* snapshotExists(source.snapshotId))
    }).pipe(Effect.provide(streamerLayer()))
  )

  it.live("names the decompressor's complaint when an archive's bytes are not a zstd stream", () =>
    Effect.gen(function* () {
      // Prepare: an object of random bytes where an archive should be
      const s3 = yield* S3
      const bytes = randomBytes(3 * 1024 * 1024)
      const key = "archives/ebs/snap-garbage/direct/disk.img.zst"
      const put = yield* awsCall("s3:PutObject", (abortSignal) => s3.send(new PutObjectCommand({ Bucket: harness.stack.artifactBucket, Key: key, Body: bytes }), { abortSignal }))
      // Act
      const error = yield* Effect.flip(
        readArchiveBack(
          { bucket: harness.stack.artifactBucket, key, size: bytes.length, etag: put.ETag, compression: "zstd" },
          streamContentCheck({ sha256: "0".repeat(64), bytes: 0 })
        )
      )
      // Assess
      assert.strictEqual(error._tag, "ArchiveUnreadable")
      assert.match(error.message, /^archives\/ebs\/snap-garbage\/direct\/disk\.img\.zst cannot be read back: zstd exited with 1: .*unsupported format/)
    }).pipe(Effect.provide(streamerLayer()))
  )
})
