import { createHash, randomBytes } from "node:crypto"
import { Ledger } from "@backup-actions/ledger"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { CompleteSnapshotCommand, PutSnapshotBlockCommand, StartSnapshotCommand } from "@aws-sdk/client-ebs"
import { CreateTagsCommand, CreateVolumeCommand } from "@aws-sdk/client-ec2"
import { ListObjectsV2Command } from "@aws-sdk/client-s3"
import { Effect, Either, Schema } from "effect"
import { Ebs, Ec2, S3, awsCall } from "@backup-actions/aws"
import {
  ArchiveCompleted,
  ExportCompleted,
  RecoveryPointStateChange,
  RestoreCompleted,
  type ArchivePlan,
  type DetailOf,
  type EventOf
} from "@backup-actions/contracts"
import { Policy } from "@backup-actions/config"
import { UnprocessableEvent } from "@backup-actions/consumer"
import { EMULATOR_ACCOUNT, EMULATOR_REGION, type ServiceHarness, type Tap, ledgerSteps, startServiceHarness } from "@backup-actions/local"
import { StreamerServices, onAmiExported, onRecoveryPoint, onRestoreCompleted } from "./service"

/** The streamer's ledger, bucket and bus on the emulator, with a tap on the bus for every Archive Completed. */
let harness: ServiceHarness
let published: Tap

/** Direct mode for EBS in the "archive-direct" vault; volume mode for the rest of EBS; nothing for other types. */
const policy: Policy = {
  rules: [
    { name: "direct", match: { resourceTypes: ["EBS"], vaults: ["archive-direct"] }, archive: { mode: "direct", compression: "zstd", deleteSourceAfterVerify: false } },
    { name: "volume", match: { resourceTypes: ["EBS"] }, archive: { mode: "volume", compression: "zstd", deleteSourceAfterVerify: false } }
  ]
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

/** The UnprocessableEvent's reason, or the tag of any other failure so that an assertion on the reason shows it. */
const rejectionOf = <A, E extends { readonly _tag: string }, R>(handled: Effect.Effect<A, E, R>) =>
  Effect.flip(handled).pipe(Effect.map((error) => ({ tag: error._tag, reason: error instanceof UnprocessableEvent ? error.reason : undefined })))

const envelope = { version: "0", account: EMULATOR_ACCOUNT, time: "2026-08-01T00:00:00Z", region: EMULATOR_REGION } as const

const snapshotArn = (snapshotId: string) => `arn:aws:ec2:${EMULATOR_REGION}::snapshot/${snapshotId}`

const planOf = (mode: ArchivePlan["mode"]): ArchivePlan => ({ rule: mode, mode, compression: "zstd", deleteSourceAfterVerify: false })

const restoreCompleted = (id: string, detail: Partial<DetailOf<typeof RestoreCompleted>> & Pick<DetailOf<typeof RestoreCompleted>, "snapshotId" | "plan">): EventOf<typeof RestoreCompleted> => {
  const correlationId = snapshotArn(detail.snapshotId)
  return {
    ...envelope,
    id,
    source: RestoreCompleted.source,
    "detail-type": RestoreCompleted.detailType,
    resources: [correlationId],
    detail: {
      schemaVersion: 1,
      correlationId,
      idempotencyKey: `${correlationId}#restore:${detail.plan.mode}`,
      status: "restored",
      resourceType: "EBS",
      backupVaultName: "archive-volume",
      ...detail
    }
  }
}

/** A COMPLETED recovery point event for an EBS volume, naming its recovery point only when given one. */
const recoveryPointCompleted = (id: string, vaultName: string, recoveryPointArn?: string): EventOf<typeof RecoveryPointStateChange> => ({
  ...envelope,
  id,
  source: RecoveryPointStateChange.source,
  "detail-type": RecoveryPointStateChange.detailType,
  resources: recoveryPointArn === undefined ? [] : [recoveryPointArn],
  detail: {
    status: "COMPLETED",
    resourceType: "EBS",
    resourceArn: `arn:aws:ec2:${EMULATOR_REGION}:${EMULATOR_ACCOUNT}:volume/vol-0${id}`,
    backupVaultName: vaultName
  }
})

describe("the streamer's restore handler", () => {
  it.live("rejects a restored event for direct mode, which never restores, and archives nothing", () =>
    Effect.gen(function* () {
      // Prepare
      const event = restoreCompleted("restore-direct", { snapshotId: "snap-0direct00000001", plan: planOf("direct"), volumeId: "vol-0direct00000001" })
      const before = yield* writtenState
      // Act
      const rejection = yield* rejectionOf(onRestoreCompleted(event))
      // Assess
      assert.deepStrictEqual(rejection, {
        tag: "UnprocessableEvent",
        reason: `"Restore Completed" event restore-direct for ${snapshotArn("snap-0direct00000001")} (mode direct) is for direct mode, which archives from the snapshot and never restores`
      })
      assert.deepStrictEqual(yield* writtenState, before)
      assert.deepStrictEqual(yield* published.drain(), [])
    }).pipe(Effect.provide(streamerLayer()))
  )

  it.live("rejects a restored event for dump mode that names no restored DB instance, and archives nothing", () =>
    Effect.gen(function* () {
      // Prepare
      const event = restoreCompleted("restore-dump", { snapshotId: "snap-0dump0000000001", plan: planOf("dump"), resourceType: "RDS" })
      const before = yield* writtenState
      // Act
      const rejection = yield* rejectionOf(onRestoreCompleted(event))
      // Assess
      assert.deepStrictEqual(rejection, {
        tag: "UnprocessableEvent",
        reason: `"Restore Completed" event restore-dump for ${snapshotArn("snap-0dump0000000001")} (mode dump) names no restored DB instance to dump`
      })
      assert.deepStrictEqual(yield* writtenState, before)
      assert.deepStrictEqual(yield* published.drain(), [])
    }).pipe(Effect.provide(streamerLayer()))
  )

  it.live("rejects a restored event for volume mode that names no restored volume, and archives nothing", () =>
    Effect.gen(function* () {
      // Prepare
      const event = restoreCompleted("restore-volume", { snapshotId: "snap-0volume00000001", plan: planOf("volume") })
      const before = yield* writtenState
      // Act
      const rejection = yield* rejectionOf(onRestoreCompleted(event))
      // Assess
      assert.deepStrictEqual(rejection, {
        tag: "UnprocessableEvent",
        reason: `"Restore Completed" event restore-volume for ${snapshotArn("snap-0volume00000001")} (mode volume) names no restored volume to archive`
      })
      assert.deepStrictEqual(yield* writtenState, before)
      assert.deepStrictEqual(yield* published.drain(), [])
    }).pipe(Effect.provide(streamerLayer()))
  )

  it.live("ignores a failed restore, even one that names no volume, and archives nothing", () =>
    Effect.gen(function* () {
      // Prepare
      const event = restoreCompleted("restore-failed", {
        snapshotId: "snap-0failed00000001",
        plan: planOf("volume"),
        status: "failed",
        reason: "ec2:CreateVolume failed: InsufficientCapacity"
      })
      const before = yield* writtenState
      // Act
      const handled = yield* Effect.either(onRestoreCompleted(event))
      // Assess
      assert.isTrue(Either.isRight(handled))
      assert.deepStrictEqual(yield* writtenState, before)
      assert.deepStrictEqual(yield* published.drain(), [])
    }).pipe(Effect.provide(streamerLayer()))
  )
})

describe("the streamer's AMI export handler", () => {
  it.live("rejects a direct-mode AMI export that lists no snapshots, and archives nothing", () =>
    Effect.gen(function* () {
      // Prepare
      const imageArn = `arn:aws:ec2:${EMULATOR_REGION}::image/ami-0nosnapshots0001`
      const event: EventOf<typeof ExportCompleted> = {
        ...envelope,
        id: "ami-no-snapshots",
        source: ExportCompleted.source,
        "detail-type": ExportCompleted.detailType,
        resources: [imageArn],
        detail: {
          schemaVersion: 1,
          correlationId: imageArn,
          idempotencyKey: `${imageArn}#export:ami`,
          status: "exported",
          kind: "ami",
          mode: "direct",
          imageId: "ami-0nosnapshots0001",
          sourceDeleted: false,
          snapshots: []
        }
      }
      const before = yield* writtenState
      // Act
      const rejection = yield* rejectionOf(onAmiExported(event))
      // Assess
      assert.deepStrictEqual(rejection, {
        tag: "UnprocessableEvent",
        reason: `"Export Completed" event ami-no-snapshots for ${imageArn} (AMI, direct mode) lists no snapshots to archive`
      })
      assert.deepStrictEqual(yield* writtenState, before)
      assert.deepStrictEqual(yield* published.drain(), [])
    }).pipe(Effect.provide(streamerLayer()))
  )
})

describe("the streamer's recovery-point handler", () => {
  it.live("rejects a direct-mode recovery point event that names no recovery point, and archives nothing", () =>
    Effect.gen(function* () {
      // Prepare
      const event = recoveryPointCompleted("rp-no-arn", "archive-direct")
      const before = yield* writtenState
      // Act
      const rejection = yield* rejectionOf(onRecoveryPoint(event))
      // Assess
      assert.deepStrictEqual(rejection, {
        tag: "UnprocessableEvent",
        reason: `"Recovery Point State Change" event rp-no-arn for ${event.detail.resourceArn} names no recovery point (resources[] is empty)`
      })
      assert.deepStrictEqual(yield* writtenState, before)
      assert.deepStrictEqual(yield* published.drain(), [])
    }).pipe(Effect.provide(streamerLayer()))
  )

  it.live("ignores a recovery point event without a recovery point when the policy archives it in another mode", () =>
    Effect.gen(function* () {
      // Prepare: the policy archives this vault's EBS points in volume mode, which starts at the restorer
      const event = recoveryPointCompleted("rp-volume-no-arn", "archive-volume")
      const before = yield* writtenState
      // Act
      const handled = yield* Effect.either(onRecoveryPoint(event))
      // Assess
      assert.isTrue(Either.isRight(handled))
      assert.deepStrictEqual(yield* writtenState, before)
      assert.deepStrictEqual(yield* published.drain(), [])
    }).pipe(Effect.provide(streamerLayer()))
  )

  it.live("records and announces a failed archive for a direct-mode recovery point that is not an EBS snapshot", () =>
    Effect.gen(function* () {
      // Prepare: a recovery point the streamer can name but never read
      const recoveryPointArn = `arn:aws:backup:${EMULATOR_REGION}:${EMULATOR_ACCOUNT}:recovery-point:not-a-snapshot`
      const event = recoveryPointCompleted("rp-not-snapshot", "archive-direct", recoveryPointArn)
      // Act
      yield* onRecoveryPoint(event)
      // Assess: the tap sees the failed outcome with its reason
      const announced = (yield* published.drain(1)).map((body): { detail: DetailOf<typeof ArchiveCompleted> } => JSON.parse(body))
      assert.deepStrictEqual(
        announced.map(({ detail }) => [detail.correlationId, detail.status, detail.sourceDeleted, detail.reason]),
        [[recoveryPointArn, "failed", false, `recovery point "${recoveryPointArn}" is not an EBS snapshot ARN`]]
      )
      // Assess: the ledger holds the failed step, so a replay runs it again and the reporter can read it
      const record = yield* (yield* Ledger).get({ recoveryPointArn, action: "archive:direct" })
      assert.strictEqual(record?.status, "failed")
      assert.strictEqual(record?.reason, `recovery point "${recoveryPointArn}" is not an EBS snapshot ARN`)
    }).pipe(Effect.provide(streamerLayer()))
  )
})

/** The README's rule for production volumes, before a rule that archives every other EBS snapshot in direct mode with zstd. */
const tagPolicy = Schema.decodeUnknownSync(Policy)({
  rules: [
    { name: "prod-ebs", match: { resourceTypes: ["EBS"], tags: { env: "prod" } }, archive: { mode: "direct", compression: "gzip" } },
    { name: "every-ebs", match: { resourceTypes: ["EBS"] }, archive: { mode: "direct", compression: "zstd" } }
  ]
})

const BLOCK = 512 * 1024

/**
 * A volume made with CreateVolume and tagged with CreateTags (none when no tags are given), and a
 * snapshot of two blocks of data written through the EBS direct APIs as AWS Backup would leave
 * one: the volume's ARN and the snapshot's id.
 */
const snapshotOfTaggedVolume = (tags: Record<string, string>) =>
  Effect.gen(function* () {
    const ec2 = yield* Ec2
    const ebs = yield* Ebs
    const volume = yield* awsCall("ec2:CreateVolume", (abortSignal) => ec2.send(new CreateVolumeCommand({ AvailabilityZone: `${EMULATOR_REGION}a`, Size: 1 }), { abortSignal }))
    const volumeId = volume.VolumeId ?? ""
    if (Object.keys(tags).length > 0) {
      yield* awsCall("ec2:CreateTags", (abortSignal) =>
        ec2.send(new CreateTagsCommand({ Resources: [volumeId], Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })) }), { abortSignal })
      )
    }
    const started = yield* awsCall("ebs:StartSnapshot", (abortSignal) => ebs.send(new StartSnapshotCommand({ VolumeSize: 1, Timeout: 60 }), { abortSignal }))
    const snapshotId = started.SnapshotId ?? ""
    const blockIndices = [0, 7]
    yield* Effect.forEach(
      blockIndices,
      (index) => {
        const body = randomBytes(BLOCK)
        const checksum = createHash("sha256").update(body).digest("base64")
        return awsCall("ebs:PutSnapshotBlock", (abortSignal) =>
          ebs.send(
            new PutSnapshotBlockCommand({ SnapshotId: snapshotId, BlockIndex: index, BlockData: body, DataLength: BLOCK, Checksum: checksum, ChecksumAlgorithm: "SHA256" }),
            { abortSignal }
          )
        )
      },
      { discard: true }
    )
    yield* awsCall("ebs:CompleteSnapshot", (abortSignal) =>
      ebs.send(new CompleteSnapshotCommand({ SnapshotId: snapshotId, ChangedBlocksCount: blockIndices.length }), { abortSignal })
    )
    return { resourceArn: `arn:aws:ec2:${EMULATOR_REGION}:${EMULATOR_ACCOUNT}:volume/${volumeId}`, snapshotId, recoveryPointArn: snapshotArn(snapshotId) }
  })

/** A COMPLETED recovery point event for a snapshot of the given volume, in the Default vault. */
const volumePointCompleted = (id: string, source: { readonly resourceArn: string; readonly recoveryPointArn: string }): EventOf<typeof RecoveryPointStateChange> => {
  const event = recoveryPointCompleted(id, "Default", source.recoveryPointArn)
  return { ...event, detail: { ...event.detail, resourceArn: source.resourceArn } }
}

describe("the streamer's direct-mode selection by tags", () => {
  it.live("archives with gzip the snapshot of a volume tagged env=prod, as the rule before the catch-all asks, and with zstd that of an untagged volume", () =>
    Effect.gen(function* () {
      // Prepare: a volume tagged env=prod and an untagged one, each with a snapshot
      const prod = yield* snapshotOfTaggedVolume({ env: "prod", team: "payments" })
      const untagged = yield* snapshotOfTaggedVolume({})
      const before = yield* writtenState
      // Act
      yield* onRecoveryPoint(volumePointCompleted("rp-prod-volume", prod))
      yield* onRecoveryPoint(volumePointCompleted("rp-untagged-volume", untagged))
      // Assess: each snapshot archived in direct mode, the tagged volume's with gzip, the other's with zstd
      const prodKey = `archives/ebs/${prod.snapshotId}/direct/disk.img.gz`
      const untaggedKey = `archives/ebs/${untagged.snapshotId}/direct/disk.img.zst`
      const announced = (yield* published.drain(1))
        .map((body): { detail: DetailOf<typeof ArchiveCompleted> } => JSON.parse(body))
        .map(({ detail }) => [detail.correlationId, detail.status, detail.mode, detail.compression, detail.location?.key, detail.verified])
        .sort()
      assert.deepStrictEqual(
        announced,
        [
          [prod.recoveryPointArn, "archived", "direct", "gzip", prodKey, true],
          [untagged.recoveryPointArn, "archived", "direct", "zstd", untaggedKey, true]
        ].sort()
      )
      // Assess: the ledger records the same for each step
      const ledger = yield* Ledger
      const records = [yield* ledger.get({ recoveryPointArn: prod.recoveryPointArn, action: "archive:direct" }), yield* ledger.get({ recoveryPointArn: untagged.recoveryPointArn, action: "archive:direct" })]
      assert.deepStrictEqual(
        records.map((record) => [record?.status, record?.outcome?.["compression"], record?.outcome?.["location"]]),
        [
          ["succeeded", "gzip", { bucket: harness.stack.artifactBucket, key: prodKey }],
          ["succeeded", "zstd", { bucket: harness.stack.artifactBucket, key: untaggedKey }]
        ]
      )
      // Assess: the archives and their manifests in the bucket, and one step each
      const after = yield* writtenState
      assert.deepStrictEqual(
        after.objects.filter((key) => !before.objects.includes(key)),
        [prodKey, `archives/ebs/${prod.snapshotId}/direct/manifest.ndjson`, untaggedKey, `archives/ebs/${untagged.snapshotId}/direct/manifest.ndjson`].sort()
      )
      assert.deepStrictEqual(
        after.ledgerSteps.filter((step) => !before.ledgerSteps.includes(step)),
        [`${prod.recoveryPointArn} archive:direct`, `${untagged.recoveryPointArn} archive:direct`].sort()
      )
    }).pipe(Effect.provide(harness.layer(StreamerServices, tagPolicy)))
  )
})
