import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { CreateSnapshotCommand, CreateVolumeCommand } from "@aws-sdk/client-ec2"
import {
  CreateDBClusterCommand,
  CreateDBClusterSnapshotCommand,
  DescribeDBClusterSnapshotsCommand,
  DescribeDBSnapshotsCommand
} from "@aws-sdk/client-rds"
import { Effect, Layer } from "effect"
import { AwsConfig, Ec2, Rds, awsCall } from "@backup-actions/aws"
import type { Policy } from "@backup-actions/config"
import { ReplicaCompleted, RecoveryPointStateChange, type DetailOf, type EventOf } from "@backup-actions/contracts"
import {
  EMULATOR_ACCOUNT,
  EMULATOR_REGION,
  type ServiceHarness,
  type Tap,
  drKeyAliasArn,
  drTopology,
  ledgerSteps,
  provisionDr,
  snapshotOfTaggedInstance,
  startServiceHarness
} from "@backup-actions/local"
import { SharerServices, onRecoveryPoint } from "./service"

/** The sharer's ledger and bus on the emulator, with a tap on the bus for every Replica Completed. */
let harness: ServiceHarness
let published: Tap

/** Another region of the emulator's account, with its own key for replicas. */
const sameAccountDr = drTopology({ destinationAccount: EMULATOR_ACCOUNT, destinationRegion: "us-west-2", keyAlias: "alias/sharer-service-test-dr" })

/** Gold-tier volumes replicated within the account to another region, whatever their vault. */
const policy: Policy = {
  rules: [
    {
      name: "dr-gold",
      match: { resourceTypes: ["EBS"], tags: { "dr-tier": "gold" } },
      replicate: { destinationAccount: EMULATOR_ACCOUNT, destinationRegion: sameAccountDr.destinationRegion, kmsKeyId: drKeyAliasArn(sameAccountDr), retentionDays: 30, maxConcurrentCopies: 20 }
    }
  ]
}

beforeAll(async () => {
  harness = await startServiceHarness({ prefix: "sharer-service-test", service: "sharer" })
  published = await harness.tapBus(ReplicaCompleted.pattern(), "replicas")
})
afterAll(() => harness.stop())

const sharerLayer = () => harness.layer(SharerServices, policy)

/** A completed snapshot of a fresh volume with the given tags: the volume's ARN and the snapshot's. */
const snapshotOfTaggedVolume = (tags: Record<string, string>) =>
  Effect.gen(function* () {
    const ec2 = yield* Ec2
    const tagged = Object.keys(tags).length === 0 ? {} : { TagSpecifications: [{ ResourceType: "volume" as const, Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })) }] }
    const volume = yield* awsCall("ec2:CreateVolume", (abortSignal) => ec2.send(new CreateVolumeCommand({ AvailabilityZone: `${EMULATOR_REGION}a`, Size: 1, ...tagged }), { abortSignal }))
    const snapshot = yield* awsCall("ec2:CreateSnapshot", (abortSignal) => ec2.send(new CreateSnapshotCommand({ VolumeId: volume.VolumeId }), { abortSignal }))
    return {
      resourceArn: `arn:aws:ec2:${EMULATOR_REGION}:${EMULATOR_ACCOUNT}:volume/${volume.VolumeId ?? ""}`,
      recoveryPointArn: `arn:aws:ec2:${EMULATOR_REGION}::snapshot/${snapshot.SnapshotId ?? ""}`
    }
  })

const recoveryPointCompleted = (id: string, source: { readonly resourceArn: string; readonly recoveryPointArn: string }, vault: string): EventOf<typeof RecoveryPointStateChange> => ({
  version: "0",
  account: EMULATOR_ACCOUNT,
  time: "2026-08-01T00:00:00Z",
  region: EMULATOR_REGION,
  id,
  source: RecoveryPointStateChange.source,
  "detail-type": RecoveryPointStateChange.detailType,
  resources: [source.recoveryPointArn],
  detail: { status: "COMPLETED", resourceType: "EBS", resourceArn: source.resourceArn, backupVaultName: vault }
})

describe("the sharer's replica selection by tags", () => {
  it.live("replicates the snapshot of a volume that carries the rule's tag, and not that of a volume without it", () =>
    Effect.gen(function* () {
      // Prepare: the destination's key, and two snapshots in a vault no other rule names
      yield* provisionDr(sameAccountDr)
      const gold = yield* snapshotOfTaggedVolume({ "dr-tier": "gold", team: "orders" })
      const plain = yield* snapshotOfTaggedVolume({ team: "orders" })
      const before = yield* ledgerSteps(harness.stack.ledgerTable)
      // Act
      yield* onRecoveryPoint(recoveryPointCompleted("rp-gold", gold, "nightly"))
      yield* onRecoveryPoint(recoveryPointCompleted("rp-plain", plain, "nightly"))
      // Assess: one step, for the tagged volume's snapshot, and its replica announced in the other region on the rule's key
      const after = yield* ledgerSteps(harness.stack.ledgerTable)
      assert.deepStrictEqual(
        after.filter((step) => !before.includes(step)),
        [`${gold.recoveryPointArn} replicate:${EMULATOR_ACCOUNT}:${sameAccountDr.destinationRegion}`]
      )
      const announced = (yield* published.drain(1)).map((body): { detail: DetailOf<typeof ReplicaCompleted> } => JSON.parse(body))
      assert.deepStrictEqual(
        announced.map(({ detail }) => [detail.sourceArn, detail.status, detail.rule, detail.region, detail.reason]),
        [[gold.recoveryPointArn, "replicated", "dr-gold", sameAccountDr.destinationRegion, undefined]]
      )
    }).pipe(Effect.provide(sharerLayer()))
  )
})

/** Gold-tier DB instances and Aurora clusters replicated within the account to another region; nothing else. */
const databasePolicy: Policy = {
  rules: [
    {
      name: "dr-gold-databases",
      match: { resourceTypes: ["RDS", "Aurora"], tags: { "dr-tier": "gold" } },
      replicate: { destinationAccount: EMULATOR_ACCOUNT, destinationRegion: sameAccountDr.destinationRegion, kmsKeyId: drKeyAliasArn(sameAccountDr), retentionDays: 30, maxConcurrentCopies: 20 }
    }
  ]
}

const rdsTags = (tags: Record<string, string>) => Object.entries(tags).map(([Key, Value]) => ({ Key, Value }))

/** An Aurora PostgreSQL cluster with the given tags and a snapshot of it, named as AWS Backup names one: the cluster's ARN and the snapshot's. */
const snapshotOfTaggedCluster = (name: string, tags: Record<string, string>) =>
  Effect.gen(function* () {
    const rds = yield* Rds
    const cluster = yield* awsCall("rds:CreateDBCluster", (abortSignal) =>
      rds.send(
        new CreateDBClusterCommand({ DBClusterIdentifier: name, Engine: "aurora-postgresql", MasterUsername: "owner", MasterUserPassword: "not-a-secret-0", Tags: rdsTags(tags) }),
        { abortSignal }
      )
    )
    const snapshot = yield* awsCall("rds:CreateDBClusterSnapshot", (abortSignal) =>
      rds.send(new CreateDBClusterSnapshotCommand({ DBClusterIdentifier: name, DBClusterSnapshotIdentifier: `awsbackup-job-${name}` }), { abortSignal })
    )
    return { resourceArn: cluster.DBCluster?.DBClusterArn ?? "", recoveryPointArn: snapshot.DBClusterSnapshot?.DBClusterSnapshotArn ?? "" }
  })

/** A COMPLETED recovery point event of the given resource type in the Default vault. */
const databasePointCompleted = (
  id: string,
  resourceType: "RDS" | "Aurora",
  source: { readonly resourceArn: string; readonly recoveryPointArn: string }
): EventOf<typeof RecoveryPointStateChange> => {
  const event = recoveryPointCompleted(id, source, "Default")
  return { ...event, detail: { ...event.detail, resourceType } }
}

/** Runs an effect with an RDS client of the emulator's account in another region. */
const inRegion = <A, E>(region: string, effect: Effect.Effect<A, E, Rds>) =>
  Effect.flatMap(AwsConfig, (settings) => Effect.provide(effect, Layer.provide(Rds.Live, AwsConfig.layer({ ...settings, region }))))

/** The identifiers of the DB snapshots and DB cluster snapshots in a region. */
const rdsSnapshotsIn = (region: string) =>
  inRegion(
    region,
    Effect.gen(function* () {
      const rds = yield* Rds
      const instances = yield* awsCall("rds:DescribeDBSnapshots", (abortSignal) => rds.send(new DescribeDBSnapshotsCommand({}), { abortSignal }))
      const clusters = yield* awsCall("rds:DescribeDBClusterSnapshots", (abortSignal) => rds.send(new DescribeDBClusterSnapshotsCommand({}), { abortSignal }))
      return [
        ...(instances.DBSnapshots ?? []).map((snapshot) => snapshot.DBSnapshotIdentifier ?? ""),
        ...(clusters.DBClusterSnapshots ?? []).map((snapshot) => snapshot.DBClusterSnapshotIdentifier ?? "")
      ].sort()
    })
  )

const replicaAction = `replicate:${EMULATOR_ACCOUNT}:${sameAccountDr.destinationRegion}`

describe("the sharer's database replica selection by tags", () => {
  it.live("replicates the DB snapshot of a DB instance that carries the rule's tag, and not that of an instance without it", () =>
    Effect.gen(function* () {
      // Prepare: the destination's key, a gold-tier DB instance and an untagged one, each snapshotted
      yield* provisionDr(sameAccountDr)
      const gold = yield* snapshotOfTaggedInstance("ledger-gold", "awsbackup-job-ledger-gold", { "dr-tier": "gold", team: "ledger" })
      const plain = yield* snapshotOfTaggedInstance("ledger-plain", "awsbackup-job-ledger-plain", { team: "ledger" })
      const before = yield* ledgerSteps(harness.stack.ledgerTable)
      const replicasBefore = yield* rdsSnapshotsIn(sameAccountDr.destinationRegion)
      // Act
      yield* onRecoveryPoint(databasePointCompleted("rp-db-gold", "RDS", gold))
      yield* onRecoveryPoint(databasePointCompleted("rp-db-plain", "RDS", plain))
      // Assess: one step, for the tagged instance's snapshot
      const after = yield* ledgerSteps(harness.stack.ledgerTable)
      assert.deepStrictEqual(
        after.filter((step) => !before.includes(step)),
        [`${gold.recoveryPointArn} ${replicaAction}`]
      )
      // Assess: its replica announced under the tag rule, and made in the other region; none of the untagged instance's
      const replicaArn = `arn:aws:rds:${sameAccountDr.destinationRegion}:${EMULATOR_ACCOUNT}:snapshot:dr-awsbackup-job-ledger-gold`
      const announced = (yield* published.drain(1)).map((body): { detail: DetailOf<typeof ReplicaCompleted> } => JSON.parse(body))
      assert.deepStrictEqual(
        announced.map(({ detail }) => [detail.sourceArn, detail.resourceType, detail.status, detail.rule, detail.replicaArn, detail.reason]),
        [[gold.recoveryPointArn, "RDS", "replicated", "dr-gold-databases", replicaArn, undefined]]
      )
      const replicasAfter = yield* rdsSnapshotsIn(sameAccountDr.destinationRegion)
      assert.deepStrictEqual(
        replicasAfter.filter((identifier) => !replicasBefore.includes(identifier)),
        ["dr-awsbackup-job-ledger-gold"]
      )
    }).pipe(Effect.provide(harness.layer(SharerServices, databasePolicy)))
  )

  it.live("replicates the snapshot of an Aurora cluster that carries the rule's tag, and not that of a cluster without it", () =>
    Effect.gen(function* () {
      // Prepare: the destination's key, a gold-tier Aurora cluster and an untagged one, each snapshotted
      yield* provisionDr(sameAccountDr)
      const gold = yield* snapshotOfTaggedCluster("orders-gold", { "dr-tier": "gold", team: "orders" })
      const plain = yield* snapshotOfTaggedCluster("orders-plain", { team: "orders" })
      const before = yield* ledgerSteps(harness.stack.ledgerTable)
      const replicasBefore = yield* rdsSnapshotsIn(sameAccountDr.destinationRegion)
      // Act
      yield* onRecoveryPoint(databasePointCompleted("rp-cluster-gold", "Aurora", gold))
      yield* onRecoveryPoint(databasePointCompleted("rp-cluster-plain", "Aurora", plain))
      // Assess: one step, for the tagged cluster's snapshot
      const after = yield* ledgerSteps(harness.stack.ledgerTable)
      assert.deepStrictEqual(
        after.filter((step) => !before.includes(step)),
        [`${gold.recoveryPointArn} ${replicaAction}`]
      )
      // Assess: its replica announced under the tag rule, and made in the other region; none of the untagged cluster's
      const replicaArn = `arn:aws:rds:${sameAccountDr.destinationRegion}:${EMULATOR_ACCOUNT}:cluster-snapshot:dr-awsbackup-job-orders-gold`
      const announced = (yield* published.drain(1)).map((body): { detail: DetailOf<typeof ReplicaCompleted> } => JSON.parse(body))
      assert.deepStrictEqual(
        announced.map(({ detail }) => [detail.sourceArn, detail.resourceType, detail.status, detail.rule, detail.replicaArn, detail.reason]),
        [[gold.recoveryPointArn, "Aurora", "replicated", "dr-gold-databases", replicaArn, undefined]]
      )
      const replicasAfter = yield* rdsSnapshotsIn(sameAccountDr.destinationRegion)
      assert.deepStrictEqual(
        replicasAfter.filter((identifier) => !replicasBefore.includes(identifier)),
        ["dr-awsbackup-job-orders-gold"]
      )
    }).pipe(Effect.provide(harness.layer(SharerServices, databasePolicy)))
  )
})
