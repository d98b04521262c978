import { randomBytes } from "node:crypto"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import {
  CreateSnapshotCommand,
  CreateVolumeCommand,
  DescribeSnapshotAttributeCommand,
  DescribeSnapshotsCommand,
  type Filter,
  type Tag
} from "@aws-sdk/client-ec2"
import {
  CreateDBInstanceCommand,
  CreateDBSnapshotCommand,
  DescribeDBClusterSnapshotsCommand,
  DescribeDBSnapshotsCommand,
  type Tag as RdsTag
} from "@aws-sdk/client-rds"
import { GetQueueAttributesCommand } from "@aws-sdk/client-sqs"
import { Duration, Effect, Schedule, Schema } from "effect"
import { Ec2, Rds, Sqs, awsCall } from "@backup-actions/aws"
import type { Policy } from "@backup-actions/config"
import { ReplicaCompleted } from "@backup-actions/contracts"
import {
  auroraClusterSnapshot,
  EMULATOR_ACCOUNT,
  EMULATOR_REGION,
  drKeyAliasArn,
  drReplicateAction,
  drTopology,
  provisionDr,
  tapBus,
  type ProvisionedDr,
  type Tap
} from "@backup-actions/local"
import { sendRecoveryPointEvent, snapshotArn, waitForStep } from "./backup-events"
import { putImageAsSnapshot } from "./snapshot-writer"
import { startLocalStack, type LocalStack } from "./stack"
import { inOwnAccount, inRoleAccount, runOn, type StackServices } from "./test-support"

const dr = drTopology()
/** A cross-region replica within the source account, for RDS (the emulator can't copy a DB snapshot shared from another account). */
const sameAccount = drTopology({ destinationAccount: EMULATOR_ACCOUNT, keyAlias: "alias/backup-actions-dr-same-account" })
const ACTION = `replicate:${dr.destinationAccount}:${dr.destinationRegion}`
const DAY_MS = 86_400_000

const replicate = (kmsKeyId: string) => drReplicateAction(dr, { kmsKeyId })

const policy: Policy = {
  rules: [
    { name: "dr-missing-key", match: { resourceTypes: ["EBS"], vaults: ["dr-missing-key"] }, replicate: replicate("alias/not-provisioned") },
    { name: "dr-tagged", match: { resourceTypes: ["EBS"], vaults: ["dr-tagged"], tags: { "dr-tier": "gold" } }, replicate: replicate(drKeyAliasArn(dr)) },
    { name: "dr-ebs", match: { resourceTypes: ["EBS"], vaults: ["dr"] }, replicate: replicate(drKeyAliasArn(dr)) },
    {
      name: "dr-rds",
      match: { resourceTypes: ["RDS"] },
      replicate: { destinationAccount: EMULATOR_ACCOUNT, destinationRegion: sameAccount.destinationRegion, kmsKeyId: drKeyAliasArn(sameAccount), retentionDays: 30, maxConcurrentCopies: 20 }
    },
    {
      name: "dr-aurora",
      match: { resourceTypes: ["Aurora"] },
      replicate: { destinationAccount: EMULATOR_ACCOUNT, destinationRegion: sameAccount.destinationRegion, kmsKeyId: drKeyAliasArn(sameAccount), retentionDays: 30, maxConcurrentCopies: 20 }
    }
  ]
}

let local: LocalStack
let scratch: string
let provisioned: ProvisionedDr
let provisionedSameAccount: ProvisionedDr
let replicaEvents: Tap

const run = <A, E>(effect: Effect.Effect<A, E, StackServices>) => runOn(local, effect)

/** An EC2 client of the destination account in a region, through the replicator role, as the sharer gets one. */
const inDestination = <A, E>(region: string, effect: Effect.Effect<A, E, Ec2>) =>
  // Suspended: `provisioned` is only known once beforeAll has run.
  Effect.suspend(() => inRoleAccount({ roleArn: provisioned.roleArn, externalId: provisioned.externalId, sessionName: "replica-test", region }, effect))

/** A DB instance's snapshot in the client's region, with the given tags. */
const dbSnapshotWithTags = (instanceId: string, snapshotId: string, tags: ReadonlyArray<RdsTag>) =>
  Effect.gen(function* () {
    const rds = yield* Rds
    yield* awsCall("rds:CreateDBInstance", (abortSignal) =>
      rds.send(
        new CreateDBInstanceCommand({
          DBInstanceIdentifier: instanceId,
          DBInstanceClass: "db.t3.micro",
          Engine: "postgres",
          AllocatedStorage: 20,
          MasterUsername: "owner",
          MasterUserPassword: "not-a-secret-0"
        }),
        { abortSignal }
      )
    ).pipe(Effect.catchIf((error) => error.kind === "conflict", () => Effect.void))
    const created = yield* awsCall("rds:CreateDBSnapshot", (abortSignal) =>
      rds.send(new CreateDBSnapshotCommand({ DBInstanceIdentifier: instanceId, DBSnapshotIdentifier: snapshotId, Tags: [...tags] }), { abortSignal })
    )
    return created.DBSnapshot?.DBSnapshotArn ?? ""
  })

const dbSnapshotsOf = (instanceId: string) =>
  Effect.flatMap(Rds, (rds) =>
    awsCall("rds:DescribeDBSnapshots", (abortSignal) =>
      rds.send(new DescribeDBSnapshotsCommand({ SnapshotType: "manual", Filters: [{ Name: "db-instance-id", Values: [instanceId] }] }), { abortSignal })
    )
  ).pipe(Effect.map((result) => result.DBSnapshots ?? []))

/** An Aurora DB cluster's snapshot in the stack's region, with the given tags (the cluster is made once). */
const clusterSnapshotWithTags = (clusterId: string, snapshotId: string, tags: ReadonlyArray<RdsTag>) =>
  Effect.flatMap(Rds, (rds) => auroraClusterSnapshot(rds, clusterId, snapshotId, tags))

const clusterSnapshotsOf = (clusterId: string) =>
  Effect.flatMap(Rds, (rds) =>
    awsCall("rds:DescribeDBClusterSnapshots", (abortSignal) =>
      rds.send(new DescribeDBClusterSnapshotsCommand({ SnapshotType: "manual", Filters: [{ Name: "db-cluster-id", Values: [clusterId] }] }), { abortSignal })
    )
  ).pipe(Effect.map((result) => result.DBClusterSnapshots ?? []))

const snapshotsWhere = (filters: ReadonlyArray<Filter>) =>
  Effect.flatMap(Ec2, (ec2) =>
    awsCall("ec2:DescribeSnapshots", (abortSignal) => ec2.send(new DescribeSnapshotsCommand({ OwnerIds: ["self"], Filters: [...filters] }), { abortSignal }))
  ).pipe(Effect.map((result) => result.Snapshots ?? []))

/** A snapshot of a fresh volume in the client's account and region, with the given tags. */
const snapshotWithTags = (tags: ReadonlyArray<Tag>) =>
  Effect.gen(function* () {
    const ec2 = yield* Ec2
    const region = yield* Effect.promise(() => ec2.config.region())
    const tagged = (resourceType: "volume" | "snapshot") => (tags.length === 0 ? {} : { TagSpecifications: [{ ResourceType: resourceType, Tags: [...tags] }] })
    const volume = yield* awsCall("ec2:CreateVolume", (abortSignal) =>
      ec2.send(new CreateVolumeCommand({ AvailabilityZone: `${region}a`, Size: 1, ...tagged("volume") }), { abortSignal })
    )
    const snapshot = yield* awsCall("ec2:CreateSnapshot", (abortSignal) =>
      ec2.send(new CreateSnapshotCommand({ VolumeId: volume.VolumeId, ...tagged("snapshot") }), { abortSignal })
    )
    return { snapshotId: snapshot.SnapshotId ?? "", volumeId: volume.VolumeId ?? "" }
  })

const volumeArn = (volumeId: string) => `arn:aws:ec2:${EMULATOR_REGION}:${EMULATOR_ACCOUNT}:volume/${volumeId}`

const sharerTags = (resourceArn: string, createdAt: Date): Array<Tag> => [
  { Key: "backup-actions:managed-by", Value: "sharer" },
  { Key: "backup-actions:source-resource", Value: resourceArn },
  { Key: "backup-actions:created-at", Value: createdAt.toISOString() }
]

/** Waits until the sharer's queue holds no message, visible or in flight. */
const sharerQueueDrained = Effect.gen(function* () {
  const sqs = yield* Sqs
  const attributes = yield* awsCall("sqs:GetQueueAttributes", (abortSignal) =>
    sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: local.stack.queues.sharer?.url,
        AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
      }),
      { abortSignal }
    )
  )
  const waiting = Number(attributes.Attributes?.ApproximateNumberOfMessages ?? "0") + Number(attributes.Attributes?.ApproximateNumberOfMessagesNotVisible ?? "0")
  if (waiting > 0) return yield* Effect.fail(`${waiting} messages left`)
}).pipe(Effect.retry({ schedule: Schedule.spaced(Duration.millis(250)), times: 240 }))

const decodeReplicaEvent = Schema.decodeUnknownSync(Schema.parseJson(Schema.Struct({ detail: Schema.Struct({ status: Schema.String, sourceArn: Schema.String }) })))

beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), "replica-test-"))
  local = await startLocalStack({ name: "replica-test", policy, services: ["sharer"] })
  provisioned = await run(provisionDr(dr))
  provisionedSameAccount = await run(provisionDr(sameAccount))
  replicaEvents = await run(tapBus(local.stack.busName, ReplicaCompleted.pattern(), "replica-test-tap"))
})

afterAll(async () => {
  await local?.stop()
  rmSync(scratch, { recursive: true, force: true })
})

describe("EBS replicas in the DR account and region, on the emulator", () => {
  it("copies a snapshot into the DR account and region on the destination's key, tags it, and prunes only its own expired replicas", async () => {
    // Prepare: a real snapshot in the source account, and earlier snapshots in the destination
    const image = join(scratch, "disk.img")
    writeFileSync(image, Buffer.concat([randomBytes(1024 * 1024), Buffer.alloc(1024 * 1024)]))
    const seeded = await run(putImageAsSnapshot(image, "replica test"))
    const sourceArn = snapshotArn(seeded.snapshotId)
    const resourceArn = volumeArn("vol-0dr00000000000001")
    const earlier = await run(
      inDestination(
        dr.destinationRegion,
        Effect.all({
          expiredOurs: snapshotWithTags(sharerTags(resourceArn, new Date(Date.now() - 40 * DAY_MS))),
          recentOurs: snapshotWithTags(sharerTags(resourceArn, new Date(Date.now() - 5 * DAY_MS))),
          expiredNotOurs: snapshotWithTags(sharerTags(resourceArn, new Date(Date.now() - 40 * DAY_MS)).slice(1)),
          expiredOursOtherVolume: snapshotWithTags(sharerTags(volumeArn("vol-0dr00000000000002"), new Date(Date.now() - 40 * DAY_MS)))
        })
      )
    )
    // Act
    await run(sendRecoveryPointEvent({ recoveryPointArn: sourceArn, resourceArn, resourceType: "EBS", vault: "dr" }))
    const record = await run(waitForStep(local.stack.ledgerTable, sourceArn, ACTION))
    // Assess: the outcome
    assert.strictEqual(record["status"], "succeeded", String(record["reason"]))
    const outcome = record["outcome"]
    assert.strictEqual(outcome.account, dr.destinationAccount)
    assert.strictEqual(outcome.region, dr.destinationRegion)
    assert.strictEqual(outcome.kmsKeyId, provisioned.keyArn)
    assert.isAtLeast(outcome.replicaAgeSeconds, 0)
    // Assess: exactly one copy, in the destination account and region, on the destination's key, tagged
    const copies = await run(inDestination(dr.destinationRegion, snapshotsWhere([{ Name: "tag:backup-actions:source-arn", Values: [sourceArn] }])))
    assert.strictEqual(copies.length, 1)
    const copy = copies[0]
    assert.strictEqual(outcome.replicaArn, `arn:aws:ec2:${dr.destinationRegion}::snapshot/${copy?.SnapshotId}`)
    assert.strictEqual(copy?.OwnerId, dr.destinationAccount)
    assert.strictEqual(copy?.Encrypted, true)
    assert.strictEqual(copy?.KmsKeyId, provisioned.keyArn)
    const tags = Object.fromEntries((copy?.Tags ?? []).map((tag) => [tag.Key, tag.Value]))
    assert.strictEqual(tags["backup-actions:managed-by"], "sharer")
    assert.strictEqual(tags["backup-actions:source-resource"], resourceArn)
    assert.strictEqual(tags["backup-actions:source-account"], EMULATOR_ACCOUNT)
    assert.strictEqual(tags["backup-actions:rule"], "dr-ebs")
    assert.isBelow(Math.abs(Date.parse(tags["backup-actions:created-at"] ?? "") - Date.now()), 10 * 60_000)
    // Assess: no copy anywhere else, no stand-in left behind
    const elsewhere = await run(
      Effect.all([
        snapshotsWhere([{ Name: "tag:backup-actions:source-arn", Values: [sourceArn] }]),
        inOwnAccount(dr.destinationRegion, snapshotsWhere([{ Name: "tag:backup-actions:source-arn", Values: [sourceArn] }])),
        inDestination(EMULATOR_REGION, snapshotsWhere([{ Name: "tag:backup-actions:stand-in-for", Values: [sourceArn] }]))
      ])
    )
    assert.deepStrictEqual(elsewhere, [[], [], []])
    // Assess: retention deleted the sharer's expired replica of this volume, and nothing else
    const remaining = await run(inDestination(dr.destinationRegion, snapshotsWhere([{ Name: "tag:backup-actions:created-at", Values: ["*"] }])))
    const remainingIds = remaining.map((snapshot) => snapshot.SnapshotId)
    assert.notInclude(remainingIds, earlier.expiredOurs.snapshotId)
    assert.includeMembers(remainingIds, [earlier.recentOurs.snapshotId, earlier.expiredNotOurs.snapshotId, earlier.expiredOursOtherVolume.snapshotId])
    assert.deepStrictEqual(outcome.prunedReplicaArns, [`arn:aws:ec2:${dr.destinationRegion}::snapshot/${earlier.expiredOurs.snapshotId}`])
    // Assess: the source is kept and no longer shared
    const source = await run(snapshotsWhere([{ Name: "snapshot-id", Values: [seeded.snapshotId] }]))
    assert.strictEqual(source.length, 1)
    const permissions = await run(
      Effect.flatMap(Ec2, (ec2) =>
        awsCall("ec2:DescribeSnapshotAttribute", (abortSignal) =>
          ec2.send(new DescribeSnapshotAttributeCommand({ SnapshotId: seeded.snapshotId, Attribute: "createVolumePermission" }), { abortSignal })
        )
      )
    )
    assert.deepStrictEqual(permissions.CreateVolumePermissions ?? [], [])
    // Assess: Replica Completed was published on the bus
    const published = (await run(replicaEvents.drain(5))).map((body) => decodeReplicaEvent(body).detail)
    assert.deepInclude(published, { status: "replicated", sourceArn })

    // Act: the same event again, as a replay delivers it
    await run(sendRecoveryPointEvent({ recoveryPointArn: sourceArn, resourceArn, resourceType: "EBS", vault: "dr" }))
    await run(sharerQueueDrained)
    // Assess: the finished step did nothing the second time
    const again = await run(waitForStep(local.stack.ledgerTable, sourceArn, ACTION))
    assert.strictEqual(again["attempts"], 1)
    const copiesAfterReplay = await run(inDestination(dr.destinationRegion, snapshotsWhere([{ Name: "tag:backup-actions:source-arn", Values: [sourceArn] }])))
    assert.strictEqual(copiesAfterReplay.length, 1)
  })

  it("looks up the volume's tags when a rule matches on them", async () => {
    // Prepare: a tagged volume's snapshot in the source account
    const seeded = await run(snapshotWithTags([{ Key: "dr-tier", Value: "gold" }]))
    const sourceArn = snapshotArn(seeded.snapshotId)
    // Act
    await run(sendRecoveryPointEvent({ recoveryPointArn: sourceArn, resourceArn: volumeArn(seeded.volumeId), resourceType: "EBS", vault: "dr-tagged" }))
    const record = await run(waitForStep(local.stack.ledgerTable, sourceArn, ACTION))
    // Assess
    assert.strictEqual(record["status"], "succeeded", String(record["reason"]))
    assert.strictEqual(record["outcome"].rule, "dr-tagged")
    const copies = await run(inDestination(dr.destinationRegion, snapshotsWhere([{ Name: "tag:backup-actions:source-arn", Values: [sourceArn] }])))
    assert.strictEqual(copies[0]?.KmsKeyId, provisioned.keyArn)
  })

  it("records a failed outcome naming the missing destination key, copies nothing and keeps the source", async () => {
    // Prepare
    const seeded = await run(snapshotWithTags([]))
    const sourceArn = snapshotArn(seeded.snapshotId)
    // Act
    await run(sendRecoveryPointEvent({ recoveryPointArn: sourceArn, resourceArn: volumeArn(seeded.volumeId), resourceType: "EBS", vault: "dr-missing-key" }))
    const record = await run(waitForStep(local.stack.ledgerTable, sourceArn, ACTION))
    // Assess
    assert.strictEqual(record["status"], "failed")
    assert.match(String(record["reason"]), /KMS key alias\/not-provisioned does not exist in account 222222222222, us-west-2/)
    assert.strictEqual(record["outcome"].reason, record["reason"])
    const copies = await run(inDestination(dr.destinationRegion, snapshotsWhere([{ Name: "tag:backup-actions:source-arn", Values: [sourceArn] }])))
    assert.deepStrictEqual(copies, [])
    const source = await run(snapshotsWhere([{ Name: "snapshot-id", Values: [seeded.snapshotId] }]))
    assert.strictEqual(source.length, 1)
    const published = (await run(replicaEvents.drain(5))).map((body) => decodeReplicaEvent(body).detail)
    assert.deepInclude(published, { status: "failed", sourceArn })
  })
})

describe("RDS replicas in another region, on the emulator", () => {
  it("copies a DB snapshot across regions on the destination's key and prunes only its own expired replicas", async () => {
    // Prepare: a DB snapshot in the source region, and earlier snapshots of the same instance in the destination region
    const resourceArn = `arn:aws:rds:${EMULATOR_REGION}:${EMULATOR_ACCOUNT}:db:orders`
    const sourceArn = await run(dbSnapshotWithTags("orders", "awsbackup-job-0001", []))
    const oldTags = sharerTags(resourceArn, new Date(Date.now() - 40 * DAY_MS))
    await run(
      inOwnAccount(
        sameAccount.destinationRegion,
        Effect.all([dbSnapshotWithTags("orders", "dr-expired-ours", oldTags), dbSnapshotWithTags("orders", "expired-not-ours", oldTags.slice(1))])
      )
    )
    // Act
    await run(sendRecoveryPointEvent({ recoveryPointArn: sourceArn, resourceArn, resourceType: "RDS", vault: "Default" }))
    const record = await run(waitForStep(local.stack.ledgerTable, sourceArn, `replicate:${EMULATOR_ACCOUNT}:${sameAccount.destinationRegion}`))
    // Assess: the replica, on the destination region's key, tagged
    assert.strictEqual(record["status"], "succeeded", String(record["reason"]))
    const outcome = record["outcome"]
    assert.strictEqual(outcome.replicaArn, `arn:aws:rds:${sameAccount.destinationRegion}:${EMULATOR_ACCOUNT}:snapshot:dr-awsbackup-job-0001`)
    assert.strictEqual(outcome.kmsKeyId, provisionedSameAccount.keyArn)
    const inDestinationRegion = await run(inOwnAccount(sameAccount.destinationRegion, dbSnapshotsOf("orders")))
    const replica = inDestinationRegion.find((snapshot) => snapshot.DBSnapshotIdentifier === "dr-awsbackup-job-0001")
    assert.strictEqual(replica?.Encrypted, true)
    assert.strictEqual(replica?.KmsKeyId, provisionedSameAccount.keyArn)
    assert.deepInclude(replica?.TagList ?? [], { Key: "backup-actions:source-arn", Value: sourceArn })
    assert.deepInclude(replica?.TagList ?? [], { Key: "backup-actions:managed-by", Value: "sharer" })
    // Assess: retention deleted the sharer's expired replica only; the source is kept
    assert.deepStrictEqual(inDestinationRegion.map((snapshot) => snapshot.DBSnapshotIdentifier).sort(), ["dr-awsbackup-job-0001", "expired-not-ours"])
    assert.deepStrictEqual(outcome.prunedReplicaArns, [`arn:aws:rds:${sameAccount.destinationRegion}:${EMULATOR_ACCOUNT}:snapshot:dr-expired-ours`])
    const sources = await run(dbSnapshotsOf("orders"))
    assert.deepStrictEqual(sources.map((snapshot) => snapshot.DBSnapshotIdentifier), ["awsbackup-job-0001"])
  })
})

describe("Aurora replicas in another region, on the emulator", () => {
  it("copies a cluster snapshot across regions on the destination's key, tagged, and prunes only its own expired replicas", async () => {
    // Prepare: a cluster snapshot in the source region, and earlier snapshots of the same cluster in the destination region
    const resourceArn = `arn:aws:rds:${EMULATOR_REGION}:${EMULATOR_ACCOUNT}:cluster:ledger`
    const sourceArn = await run(clusterSnapshotWithTags("ledger", "awsbackup-job-aurora-0001", [{ Key: "backup-actions:managed", Value: "true" }]))
    const oldTags = sharerTags(resourceArn, new Date(Date.now() - 40 * DAY_MS))
    const recentTags = sharerTags(resourceArn, new Date(Date.now() - 5 * DAY_MS))
    await run(
      inOwnAccount(
        sameAccount.destinationRegion,
        Effect.all([
          clusterSnapshotWithTags("ledger", "dr-expired-ours", oldTags),
          clusterSnapshotWithTags("ledger", "dr-recent-ours", recentTags),
          clusterSnapshotWithTags("ledger", "expired-not-ours", oldTags.slice(1))
        ])
      )
    )
    // Act
    await run(sendRecoveryPointEvent({ recoveryPointArn: sourceArn, resourceArn, resourceType: "Aurora", vault: "Default" }))
    const record = await run(waitForStep(local.stack.ledgerTable, sourceArn, `replicate:${EMULATOR_ACCOUNT}:${sameAccount.destinationRegion}`))
    // Assess: the outcome
    assert.strictEqual(record["status"], "succeeded", String(record["reason"]))
    const outcome = record["outcome"]
    assert.strictEqual(outcome.resourceType, "Aurora")
    assert.strictEqual(outcome.rule, "dr-aurora")
    assert.strictEqual(outcome.replicaArn, `arn:aws:rds:${sameAccount.destinationRegion}:${EMULATOR_ACCOUNT}:cluster-snapshot:dr-awsbackup-job-aurora-0001`)
    assert.strictEqual(outcome.kmsKeyId, provisionedSameAccount.keyArn)
    assert.isAtLeast(outcome.replicaAgeSeconds, 0)
    // Assess: the replica, available, on the destination region's key, with the sharer's tags and not the source's
    const inDestinationRegion = await run(inOwnAccount(sameAccount.destinationRegion, clusterSnapshotsOf("ledger")))
    const replica = inDestinationRegion.find((snapshot) => snapshot.DBClusterSnapshotIdentifier === "dr-awsbackup-job-aurora-0001")
    assert.strictEqual(replica?.Status, "available")
    assert.strictEqual(replica?.StorageEncrypted, true)
    assert.strictEqual(replica?.KmsKeyId, provisionedSameAccount.keyArn)
    const tags = Object.fromEntries((replica?.TagList ?? []).map((tag) => [tag.Key, tag.Value]))
    assert.deepInclude(tags, {
      "backup-actions:managed-by": "sharer",
      "backup-actions:source-arn": sourceArn,
      "backup-actions:source-resource": resourceArn,
      "backup-actions:source-account": EMULATOR_ACCOUNT,
      "backup-actions:rule": "dr-aurora"
    })
    assert.notProperty(tags, "backup-actions:managed")
    // Assess: retention deleted the sharer's expired replica only
    assert.deepStrictEqual(inDestinationRegion.map((snapshot) => snapshot.DBClusterSnapshotIdentifier).sort(), [
      "dr-awsbackup-job-aurora-0001",
      "dr-recent-ours",
      "expired-not-ours"
    ])
    assert.deepStrictEqual(outcome.prunedReplicaArns, [`arn:aws:rds:${sameAccount.destinationRegion}:${EMULATOR_ACCOUNT}:cluster-snapshot:dr-expired-ours`])
    // Assess: the source is kept
    const sources = await run(clusterSnapshotsOf("ledger"))
    assert.deepStrictEqual(sources.map((snapshot) => snapshot.DBClusterSnapshotIdentifier), ["awsbackup-job-aurora-0001"])
    // Assess: Replica Completed was published on the bus
    const published = (await run(replicaEvents.drain(5))).map((body) => decodeReplicaEvent(body).detail)
    assert.deepInclude(published, { status: "replicated", sourceArn })
  })
})
