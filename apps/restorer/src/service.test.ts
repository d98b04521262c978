import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { CreateSnapshotCommand, CreateVolumeCommand, DescribeVolumesCommand } from "@aws-sdk/client-ec2"
import { DescribeDBInstancesCommand } from "@aws-sdk/client-rds"
import { Effect } from "effect"
import { Ec2, Rds, awsCall } from "@backup-actions/aws"
import { ArchiveCompleted, RestoreCompleted, type ArchiveMode, type DetailOf, type EventOf } from "@backup-actions/contracts"
import type { Policy } from "@backup-actions/config"
import { EMULATOR_ACCOUNT, EMULATOR_REGION, type ServiceHarness, type Tap, ledgerSteps, startServiceHarness } from "@backup-actions/local"
import { RestorerServices, onArchiveCompleted, onRecoveryPoint } from "./service"
import { testEnvelope, recoveryPointCompleted as recoveryPointEvent } from "@backup-actions/contracts/testing"

/** The restorer's ledger and bus on the emulator, with a tap on the bus for every Restore Completed. */
let harness: ServiceHarness
let published: Tap

/** Volume mode for production volumes in the "by-tag" vault, direct mode for the rest of EBS. */
const policy: Policy = {
  rules: [
    {
      name: "prod-volumes",
      match: { resourceTypes: ["EBS"], vaults: ["by-tag"], tags: { env: "prod" } },
      archive: { mode: "volume", compression: "gzip", deleteSourceAfterVerify: false }
    },
    { name: "direct", match: { resourceTypes: ["EBS"] }, archive: { mode: "direct", compression: "zstd", deleteSourceAfterVerify: false } }
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

const envelope = testEnvelope(EMULATOR_ACCOUNT, EMULATOR_REGION)

const recoveryPointCompleted = (id: string, resource: Parameters<typeof recoveryPointEvent>[2], recoveryPointArn?: string) =>
  recoveryPointEvent(envelope, id, resource, recoveryPointArn)

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
    verified: "none",
    sourceDeleted: false,
    reason: "tar exited with 2"
  }
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
  it.live("restores for a volume-mode archive the snapshot of a volume tagged as the rule asks, and hands an untagged one's direct-mode plan on", () =>
    Effect.gen(function* () {
      // Prepare: two volumes in the same vault, one of them tagged env=prod
      const prod = yield* snapshotOfTaggedVolume({ env: "prod", team: "storage" })
      const dev = yield* snapshotOfTaggedVolume({ env: "dev", team: "storage" })
      const before = yield* restorerState
      // Act
      yield* onRecoveryPoint(recoveryPointCompleted("rp-tagged-prod", { resourceType: "EBS", resourceArn: prod.resourceArn, vaultName: "by-tag" }, prod.recoveryPointArn))
      yield* onRecoveryPoint(recoveryPointCompleted("rp-tagged-dev", { resourceType: "EBS", resourceArn: dev.resourceArn, vaultName: "by-tag" }, dev.recoveryPointArn))
      // Assess: one restore, of the tagged volume's snapshot, under the tag rule's plan; the other's plan handed on
      const after = yield* restorerState
      assert.deepStrictEqual(after.ledgerSteps, [...before.ledgerSteps, `${prod.recoveryPointArn} restore:volume`].sort())
      const announced = (yield* published.drain(2)).map((body): { detail: DetailOf<typeof RestoreCompleted> } => JSON.parse(body))
      assert.sameDeepMembers(
        announced.map(({ detail }) => [detail.correlationId, detail.status, detail.plan.rule, detail.plan.mode, detail.plan.compression, detail.backupVaultName]),
        [
          [prod.recoveryPointArn, "restored", "prod-volumes", "volume", "gzip", "by-tag"],
          [dev.recoveryPointArn, "not-needed", "direct", "direct", "zstd", "by-tag"]
        ]
      )
      const restoredVolumeId = announced.find(({ detail }) => detail.status === "restored")?.detail.volumeId ?? ""
      assert.include(after.volumes, restoredVolumeId)
      // Clean up what a volume-mode archive would have deleted
      yield* onArchiveCompleted({
        ...archiveCompleted("archive-tagged-prod", "volume", prod.recoveryPointArn),
        detail: { ...archiveCompleted("archive-tagged-prod", "volume", prod.recoveryPointArn).detail, restoredVolumeId }
      })
    }).pipe(Effect.provide(restorerLayer()))
  )
})
