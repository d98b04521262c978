import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { CreateSnapshotCommand, CreateVolumeCommand, DescribeVolumesCommand } from "@aws-sdk/client-ec2"
import { CreateDBInstanceCommand, DescribeDBInstancesCommand } from "@aws-sdk/client-rds"
import { Effect, Either } from "effect"
import { Ec2, Rds, awsCall } from "@backup-actions/aws"
import { ArchiveCompleted, RecoveryPointStateChange, RestoreCompleted, type ArchiveMode, type DetailOf, type EventOf } from "@backup-actions/contracts"
import type { Policy } from "@backup-actions/config"
import { UnprocessableEvent } from "@backup-actions/consumer"
import { EMULATOR_ACCOUNT, EMULATOR_REGION, type ServiceHarness, type Tap, ledgerSteps, startServiceHarness } from "@backup-actions/local"
import { RestorerServices, onArchiveCompleted, onRecoveryPoint } from "./service"
import { CREATED_AT_TAG, MANAGED_TAG, RECOVERY_POINT_TAG } from "./volumes"

/** The restorer's ledger and bus on the emulator, with a tap on the bus for every Restore Completed. */
let harness: ServiceHarness
let published: Tap

/** Volume mode for EBS in the "archive-volume" vault and for production volumes in the "by-tag" vault, direct mode for the rest of EBS, dumps for RDS. */
const policy: Policy = {
  rules: [
    { name: "volume", match: { resourceTypes: ["EBS"], vaults: ["archive-volume"] }, archive: { mode: "volume", compression: "zstd", deleteSourceAfterVerify: false } },
    {
      name: "prod-volumes",
      match: { resourceTypes: ["EBS"], vaults: ["by-tag"], tags: { env: "prod" } },
      archive: { mode: "volume", compression: "gzip", deleteSourceAfterVerify: false }
    },
    { name: "direct", match: { resourceTypes: ["EBS"] }, archive: { mode: "direct", compression: "zstd", deleteSourceAfterVerify: false } },
    { name: "dump", match: { resourceTypes: ["RDS"] }, archive: { mode: "dump", compression: "zstd", deleteSourceAfterVerify: false } }
  ]
}

beforeAll(async () => {
  harness = await startServiceHarness({ prefix: "restorer-service-test", service: "restorer" })
  published = await harness.tapBus(RestoreCompleted.pattern(), "restores")
})
afterAll(() => harness.stop())

const restorerLayer = () => harness.layer(RestorerServices, policy)

/** What the restorer makes and deletes: ledger steps, volumes and DB instances. */
const restorerState = Effect.gen(function* () {
  const ec2 = yield* Ec2
  const rds = yield* Rds
  const steps = yield* ledgerSteps(harness.stack.ledgerTable)
  const volumes = yield* awsCall("ec2:DescribeVolumes", (abortSignal) => ec2.send(new DescribeVolumesCommand({}), { abortSignal }))
  const instances = yield* awsCall("rds:DescribeDBInstances", (abortSignal) => rds.send(new DescribeDBInstancesCommand({}), { abortSignal }))
  return {
    ledgerSteps: steps,
    volumes: (volumes.Volumes ?? []).map((volume) => volume.VolumeId ?? "").sort(),
    instances: (instances.DBInstances ?? []).map((instance) => instance.DBInstanceIdentifier ?? "").sort()
  }
})

/** The UnprocessableEvent's reason, or the tag of any other failure so that an assertion on the reason shows it. */
const rejectionOf = <A, E extends { readonly _tag: string }, R>(handled: Effect.Effect<A, E, R>) =>
  Effect.flip(handled).pipe(Effect.map((error) => ({ tag: error._tag, reason: error instanceof UnprocessableEvent ? error.reason : undefined })))

const envelope = { version: "0", account: EMULATOR_ACCOUNT, time: "2026-08-01T00:00:00Z", region: EMULATOR_REGION } as const

const ourTags = (recoveryPointArn: string) => [
  { Key: MANAGED_TAG, Value: "true" },
  { Key: RECOVERY_POINT_TAG, Value: recoveryPointArn },
  { Key: CREATED_AT_TAG, Value: new Date().toISOString() }
]

/** A volume as the restorer makes one for a recovery point. */
const restoredVolume = (recoveryPointArn: string) =>
  Effect.flatMap(Ec2, (ec2) =>
    awsCall("ec2:CreateVolume", (abortSignal) =>
      ec2.send(
        new CreateVolumeCommand({
          AvailabilityZone: `${EMULATOR_REGION}a`,
          Size: 1,
          VolumeType: "gp3",
          TagSpecifications: [{ ResourceType: "volume", Tags: ourTags(recoveryPointArn) }]
        }),
        { abortSignal }
      )
    )
  ).pipe(Effect.map((created) => created.VolumeId ?? ""))

/** A DB instance as the restorer makes one for a dump. */
const restoredInstance = (instanceId: string, recoveryPointArn: string) =>
  Effect.flatMap(Rds, (rds) =>
    awsCall("rds:CreateDBInstance", (abortSignal) =>
      rds.send(
        new CreateDBInstanceCommand({
          DBInstanceIdentifier: instanceId,
          DBInstanceClass: "db.t4g.micro",
          Engine: "postgres",
          AllocatedStorage: 20,
          MasterUsername: "dbadmin",
          MasterUserPassword: "restored-instance-password-1",
          Tags: ourTags(recoveryPointArn)
        }),
        { abortSignal }
      )
    )
  )

/** A COMPLETED recovery point event, naming its recovery point only when given one. */
const recoveryPointCompleted = (
  id: string,
  resource: { readonly resourceType: string; readonly resourceArn: string; readonly vaultName: string },
  recoveryPointArn?: string
): EventOf<typeof RecoveryPointStateChange> => ({
  ...envelope,
  id,
  source: RecoveryPointStateChange.source,
  "detail-type": RecoveryPointStateChange.detailType,
  resources: recoveryPointArn === undefined ? [] : [recoveryPointArn],
  detail: { status: "COMPLETED", resourceType: resource.resourceType, resourceArn: resource.resourceArn, backupVaultName: resource.vaultName }
})

const ebsVolume = (name: string, vaultName: string) => ({ resourceType: "EBS", resourceArn: `arn:aws:ec2:${EMULATOR_REGION}:${EMULATOR_ACCOUNT}:volume/vol-0${name}`, vaultName })

/** A failed Archive Completed that names neither what was restored for it. */
const archiveCompleted = (id: string, mode: ArchiveMode, correlationId: string): EventOf<typeof ArchiveCompleted> => ({
  ...envelope,
  id,
  source: ArchiveCompleted.source,
  "detail-type": ArchiveCompleted.detailType,
  resources: [correlationId],
  detail: {
    schemaVersion: 1,
    correlationId,
    idempotencyKey: `${correlationId}#archive:${mode}`,
    status: "failed",
    snapshotId: "snap-0archived000001",
    mode,
    compression: "zstd",
    bytesRead: 0,
    bytesStored: 0,
    durationMs: 10,
    verified: false,
    sourceDeleted: false,
    reason: "tar exited with 2"
  }
})

describe("the restorer's recovery-point handler", () => {
  it.live("rejects a volume-mode recovery point event that names no recovery point, and restores nothing", () =>
    Effect.gen(function* () {
      // Prepare
      const event = recoveryPointCompleted("rp-volume-no-arn", ebsVolume("volumenoarn", "archive-volume"))
      const before = yield* restorerState
      // Act
      const rejection = yield* rejectionOf(onRecoveryPoint(event))
      // Assess
      assert.deepStrictEqual(rejection, {
        tag: "UnprocessableEvent",
        reason: `"Recovery Point State Change" event rp-volume-no-arn for ${event.detail.resourceArn} names no recovery point (resources[] is empty)`
      })
      assert.deepStrictEqual(yield* restorerState, before)
      assert.deepStrictEqual(yield* published.drain(), [])
    }).pipe(Effect.provide(restorerLayer()))
  )

  it.live("rejects a dump-mode recovery point event that names no recovery point, and restores nothing", () =>
    Effect.gen(function* () {
      // Prepare
      const database = { resourceType: "RDS", resourceArn: `arn:aws:rds:${EMULATOR_REGION}:${EMULATOR_ACCOUNT}:db:orders`, vaultName: "Default" }
      const event = recoveryPointCompleted("rp-dump-no-arn", database)
      const before = yield* restorerState
      // Act
      const rejection = yield* rejectionOf(onRecoveryPoint(event))
      // Assess
      assert.deepStrictEqual(rejection, {
        tag: "UnprocessableEvent",
        reason: `"Recovery Point State Change" event rp-dump-no-arn for ${database.resourceArn} names no recovery point (resources[] is empty)`
      })
      assert.deepStrictEqual(yield* restorerState, before)
      assert.deepStrictEqual(yield* published.drain(), [])
    }).pipe(Effect.provide(restorerLayer()))
  )

  it.live("ignores recovery point events without a recovery point that the policy archives in direct mode or not at all", () =>
    Effect.gen(function* () {
      // Prepare: direct mode reads the snapshot itself, and no rule archives DynamoDB tables
      const direct = recoveryPointCompleted("rp-direct-no-arn", ebsVolume("directnoarn", "Default"))
      const table = { resourceType: "DynamoDB", resourceArn: `arn:aws:dynamodb:${EMULATOR_REGION}:${EMULATOR_ACCOUNT}:table/orders`, vaultName: "archive-volume" }
      const unarchived = recoveryPointCompleted("rp-table-no-arn", table)
      const before = yield* restorerState
      // Act
      const handled = [yield* Effect.either(onRecoveryPoint(direct)), yield* Effect.either(onRecoveryPoint(unarchived))]
      // Assess
      assert.deepStrictEqual(handled.map(Either.isRight), [true, true])
      assert.deepStrictEqual(yield* restorerState, before)
      assert.deepStrictEqual(yield* published.drain(), [])
    }).pipe(Effect.provide(restorerLayer()))
  )

  it.live("records and announces a failed restore for a volume-mode recovery point that is not an EBS snapshot", () =>
    Effect.gen(function* () {
      // Prepare: a recovery point the restorer can name but never restore
      const recoveryPointArn = `arn:aws:backup:${EMULATOR_REGION}:${EMULATOR_ACCOUNT}:recovery-point:not-a-snapshot`
      const event = recoveryPointCompleted("rp-not-snapshot", ebsVolume("notsnapshot", "archive-volume"), recoveryPointArn)
      const before = yield* restorerState
      // Act
      yield* onRecoveryPoint(event)
      // Assess: a failed step in the ledger, the same reason on the bus, and no volume made
      const reason = `recovery point "${recoveryPointArn}" is not an EBS snapshot ARN`
      const after = yield* restorerState
      assert.deepStrictEqual(after, { ...before, ledgerSteps: [...before.ledgerSteps, `${recoveryPointArn} restore:volume`].sort() })
      const announced = (yield* published.drain(1)).map((body): { detail: DetailOf<typeof RestoreCompleted> } => JSON.parse(body))
      assert.deepStrictEqual(
        announced.map(({ detail }) => [detail.correlationId, detail.status, detail.reason]),
        [[recoveryPointArn, "failed", reason]]
      )
    }).pipe(Effect.provide(restorerLayer()))
  )
})

/** A completed snapshot of a fresh volume with the given tags: the volume's ARN and the snapshot's. */
const snapshotOfTaggedVolume = (tags: Record<string, string>) =>
  Effect.gen(function* () {
    const ec2 = yield* Ec2
    const volume = yield* awsCall("ec2:CreateVolume", (abortSignal) =>
      ec2.send(
        new CreateVolumeCommand({
          AvailabilityZone: `${EMULATOR_REGION}a`,
          Size: 1,
          TagSpecifications: [{ ResourceType: "volume", Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })) }]
        }),
        { abortSignal }
      )
    )
    const snapshot = yield* awsCall("ec2:CreateSnapshot", (abortSignal) => ec2.send(new CreateSnapshotCommand({ VolumeId: volume.VolumeId }), { abortSignal }))
    return {
      volumeId: volume.VolumeId ?? "",
      resourceArn: `arn:aws:ec2:${EMULATOR_REGION}:${EMULATOR_ACCOUNT}:volume/${volume.VolumeId ?? ""}`,
      recoveryPointArn: `arn:aws:ec2:${EMULATOR_REGION}::snapshot/${snapshot.SnapshotId ?? ""}`
    }
  })

describe("the restorer's selection by tags", () => {
  it.live("restores for a volume-mode archive the snapshot of a volume tagged as the rule asks, and leaves an untagged one to direct mode", () =>
    Effect.gen(function* () {
      // Prepare: two volumes in the same vault, one of them tagged env=prod
      const prod = yield* snapshotOfTaggedVolume({ env: "prod", team: "storage" })
      const dev = yield* snapshotOfTaggedVolume({ env: "dev", team: "storage" })
      const before = yield* restorerState
      // Act
      yield* onRecoveryPoint(recoveryPointCompleted("rp-tagged-prod", { resourceType: "EBS", resourceArn: prod.resourceArn, vaultName: "by-tag" }, prod.recoveryPointArn))
      yield* onRecoveryPoint(recoveryPointCompleted("rp-tagged-dev", { resourceType: "EBS", resourceArn: dev.resourceArn, vaultName: "by-tag" }, dev.recoveryPointArn))
      // Assess: one restore, of the tagged volume's snapshot, under the tag rule's plan
      const after = yield* restorerState
      assert.deepStrictEqual(after.ledgerSteps, [...before.ledgerSteps, `${prod.recoveryPointArn} restore:volume`].sort())
      const announced = (yield* published.drain(1)).map((body): { detail: DetailOf<typeof RestoreCompleted> } => JSON.parse(body))
      assert.deepStrictEqual(
        announced.map(({ detail }) => [detail.correlationId, detail.status, detail.plan.rule, detail.plan.mode, detail.plan.compression, detail.backupVaultName]),
        [[prod.recoveryPointArn, "restored", "prod-volumes", "volume", "gzip", "by-tag"]]
      )
      const restoredVolumeId = announced[0]?.detail.volumeId ?? ""
      assert.include(after.volumes, restoredVolumeId)
      // Clean up what a volume-mode archive would have deleted
      yield* onArchiveCompleted({
        ...archiveCompleted("archive-tagged-prod", "volume", prod.recoveryPointArn),
        detail: { ...archiveCompleted("archive-tagged-prod", "volume", prod.recoveryPointArn).detail, restoredVolumeId }
      })
    }).pipe(Effect.provide(restorerLayer()))
  )
})

describe("the restorer's archive handler", () => {
  it.live("rejects volume and dump archives that name nothing restored, and deletes nothing", () =>
    Effect.gen(function* () {
      // Prepare: a volume and a DB instance restored for the recovery points these archives are about
      const volumePoint = `arn:aws:ec2:${EMULATOR_REGION}::snapshot/snap-0archived000001`
      const dumpPoint = `arn:aws:rds:${EMULATOR_REGION}:${EMULATOR_ACCOUNT}:snapshot:awsbackup:job-orders`
      const volumeId = yield* restoredVolume(volumePoint)
      yield* restoredInstance("restored-orders", dumpPoint)
      const before = yield* restorerState
      // Act
      const rejections = [
        yield* rejectionOf(onArchiveCompleted(archiveCompleted("archive-volume-unnamed", "volume", volumePoint))),
        yield* rejectionOf(onArchiveCompleted(archiveCompleted("archive-dump-unnamed", "dump", dumpPoint)))
      ]
      // Assess
      assert.deepStrictEqual(rejections, [
        {
          tag: "UnprocessableEvent",
          reason: `"Archive Completed" event archive-volume-unnamed for ${volumePoint} (mode volume) names neither a restored volume nor a restored DB instance to delete`
        },
        {
          tag: "UnprocessableEvent",
          reason: `"Archive Completed" event archive-dump-unnamed for ${dumpPoint} (mode dump) names neither a restored volume nor a restored DB instance to delete`
        }
      ])
      const after = yield* restorerState
      assert.deepStrictEqual(after, before)
      assert.include(after.volumes, volumeId)
      assert.include(after.instances, "restored-orders")
      assert.deepStrictEqual(yield* published.drain(), [])
    }).pipe(Effect.provide(restorerLayer()))
  )

  it.live("deletes the restored volume that an archive names, whatever its outcome", () =>
    Effect.gen(function* () {
      // Prepare
      const recoveryPoint = `arn:aws:ec2:${EMULATOR_REGION}::snapshot/snap-0named0000000001`
      const volumeId = yield* restoredVolume(recoveryPoint)
      const unnamed = archiveCompleted("archive-volume-named", "volume", recoveryPoint)
      const event = { ...unnamed, detail: { ...unnamed.detail, restoredVolumeId: volumeId } }
      // Act
      yield* onArchiveCompleted(event)
      // Assess
      assert.notInclude((yield* restorerState).volumes, volumeId)
    }).pipe(Effect.provide(restorerLayer()))
  )
})
