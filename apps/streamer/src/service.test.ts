import { Ledger } from "@backup-actions/ledger"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { ListObjectsV2Command } from "@aws-sdk/client-s3"
import { Effect } from "effect"
import { S3, awsCall } from "@backup-actions/aws"
import { ArchiveCompleted, type ArchivePlan, type DetailOf } from "@backup-actions/contracts"
import type { Policy } from "@backup-actions/config"
import { EMULATOR_ACCOUNT, EMULATOR_REGION, type ServiceHarness, type Tap, ledgerSteps, startServiceHarness } from "@backup-actions/local"
import { StreamerServices, onRestoreCompleted } from "./service"
import { snapshotExists, snapshotOfData } from "./test-support"
import { testEnvelope, directPlanHandOff } from "@backup-actions/contracts/testing"

/** The streamer's ledger, bucket and bus on the emulator, with a tap on the bus for every Archive Completed. */
let harness: ServiceHarness
let published: Tap

/**
 * The streamer's own policy, which it must never consult for an archive: volume mode with gzip
 * for every EBS snapshot, the source deleted once verified. Every plan a test hands the
 * streamer says otherwise.
 */
const policy: Policy = {
  rules: [{ name: "now-volume", match: { resourceTypes: ["EBS"] }, archive: { mode: "volume", compression: "gzip", deleteSourceAfterVerify: true } }]
}

beforeAll(async () => {
  harness = await startServiceHarness({ prefix: "streamer-service-test", service: "streamer" })
  published = await harness.tapBus(ArchiveCompleted.pattern(), "archives")
})
afterAll(() => harness.stop())

const streamerLayer = () => harness.layer(StreamerServices, policy)

/** What the streamer leaves behind when it archives: ledger steps and objects in the artifact bucket. */
const writtenState = Effect.gen(function* () {
  const s3 = yield* S3
  const steps = yield* ledgerSteps(harness.stack.ledgerTable)
  const objects = yield* awsCall("s3:ListObjectsV2", (abortSignal) => s3.send(new ListObjectsV2Command({ Bucket: harness.stack.artifactBucket }), { abortSignal }))
  return {
    ledgerSteps: steps,
    objects: (objects.Contents ?? []).map((object) => object.Key ?? "").sort()
  }
})

const envelope = testEnvelope(EMULATOR_ACCOUNT, EMULATOR_REGION)

const handOff = (id: string, recoveryPointArn: string, snapshotId: string, plan: ArchivePlan) => directPlanHandOff(envelope, id, recoveryPointArn, snapshotId, plan)

describe("the streamer's archive plan", () => {
  it.live("archives by the plan the restorer handed it, in direct mode with that plan's compression, although its own policy now says volume mode with gzip", () =>
    Effect.gen(function* () {
      // Prepare: two snapshots whose plans the restorer decided (gzip for one, zstd for the other, both keeping the source)
      const first = yield* snapshotOfData
      const second = yield* snapshotOfData
      const gzipPlan: ArchivePlan = { rule: "prod-ebs", mode: "direct", compression: "gzip", deleteSourceAfterVerify: false }
      const zstdPlan: ArchivePlan = { rule: "every-ebs", mode: "direct", compression: "zstd", deleteSourceAfterVerify: false }
      const before = yield* writtenState
      // Act
      yield* onRestoreCompleted(handOff("handoff-gzip", first.recoveryPointArn, first.snapshotId, gzipPlan))
      yield* onRestoreCompleted(handOff("handoff-zstd", second.recoveryPointArn, second.snapshotId, zstdPlan))
      // Assess: each archived in direct mode with its plan's compression
      const firstKey = `archives/ebs/${first.snapshotId}/direct/disk.img.gz`
      const secondKey = `archives/ebs/${second.snapshotId}/direct/disk.img.zst`
      const announced = (yield* published.drain(1))
        .map((body): { detail: DetailOf<typeof ArchiveCompleted> } => JSON.parse(body))
        .map(({ detail }) => [detail.correlationId, detail.status, detail.mode, detail.compression, detail.location?.key, detail.verified, detail.sourceDeleted])
      assert.sameDeepMembers(announced, [
        [first.recoveryPointArn, "archived", "direct", "gzip", firstKey, "content", false],
        [second.recoveryPointArn, "archived", "direct", "zstd", secondKey, "content", false]
      ])
      // Assess: the ledger records the same for each step
      const ledger = yield* Ledger
      const records = [yield* ledger.get({ recoveryPointArn: first.recoveryPointArn, action: "archive:direct" }), yield* ledger.get({ recoveryPointArn: second.recoveryPointArn, action: "archive:direct" })]
      assert.deepStrictEqual(
        records.map((record) => [record?.status, record?.outcome?.["compression"], record?.outcome?.["location"]]),
        [
          ["succeeded", "gzip", { bucket: harness.stack.artifactBucket, key: firstKey }],
          ["succeeded", "zstd", { bucket: harness.stack.artifactBucket, key: secondKey }]
        ]
      )
      // Assess: the archives and their manifests in the bucket, one direct-mode step each, and both sources kept as the plans say
      const after = yield* writtenState
      assert.deepStrictEqual(
        after.objects.filter((key) => !before.objects.includes(key)),
        [firstKey, `archives/ebs/${first.snapshotId}/direct/manifest.ndjson`, secondKey, `archives/ebs/${second.snapshotId}/direct/manifest.ndjson`].sort()
      )
      assert.deepStrictEqual(
        after.ledgerSteps.filter((step) => !before.ledgerSteps.includes(step)),
        [`${first.recoveryPointArn} archive:direct`, `${second.recoveryPointArn} archive:direct`].sort()
      )
      assert.deepStrictEqual([yield* snapshotExists(first.snapshotId), yield* snapshotExists(second.snapshotId)], [true, true])
    }).pipe(Effect.provide(streamerLayer()))
  )
})
