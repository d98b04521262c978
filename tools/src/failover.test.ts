import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import {
  CreateSecurityGroupCommand,
  CreateSnapshotCommand,
  CreateVolumeCommand,
  DescribeSnapshotsCommand,
  DescribeSubnetsCommand,
  DescribeVolumesCommand
} from "@aws-sdk/client-ec2"
import {
  CreateDBInstanceCommand,
  CreateDBSnapshotCommand,
  CreateDBSubnetGroupCommand,
  DescribeDBClusterSnapshotsCommand,
  DescribeDBClustersCommand,
  DescribeDBInstancesCommand
} from "@aws-sdk/client-rds"
import { Effect, Schema } from "effect"
import { Ec2, Rds, awsCall, type AwsError } from "@backup-actions/aws"
import { FailoverResult } from "@backup-actions/contracts"
import type { Policy } from "@backup-actions/config"
import { EMULATOR_ACCOUNT, EMULATOR_REGION, auroraClusterSnapshot, drKeyAliasArn, drReplicateAction, drRoleArn, drTopology, provisionDr } from "@backup-actions/local"
import { sendRecoveryPointEvent, snapshotArn, waitForStep } from "./backup-events"
import { startLocalStack, type LocalStack } from "./stack"
import { runCli } from "./cli-process"
import { inOwnAccount, inRoleAccount, runOn, type StackServices } from "./test-support"

const dr = drTopology()
/** RDS and Aurora within the source account (the emulator can't copy a DB snapshot shared from another account). */
const sameAccount = drTopology({ destinationAccount: EMULATOR_ACCOUNT, keyAlias: "alias/backup-actions-dr-failover" })
const DR_REGION = dr.destinationRegion

const policy: Policy = {
  rules: [
    {
      name: "dr-ebs",
      match: { resourceTypes: ["EBS"] },
      replicate: drReplicateAction(dr)
    },
    {
      name: "dr-rds",
      match: { resourceTypes: ["RDS"] },
      replicate: { destinationAccount: EMULATOR_ACCOUNT, destinationRegion: DR_REGION, kmsKeyId: drKeyAliasArn(sameAccount), retentionDays: 30, maxConcurrentCopies: 20 }
    },
    {
      name: "dr-aurora",
      match: { resourceTypes: ["Aurora"] },
      replicate: { destinationAccount: EMULATOR_ACCOUNT, destinationRegion: DR_REGION, kmsKeyId: drKeyAliasArn(sameAccount), retentionDays: 30, maxConcurrentCopies: 20 }
    }
  ]
}

/** A pilot-light network in the DR region: a DB subnet group over the default VPC's subnets and a security group. */
const pilotLightNetwork = (name: string) =>
  inOwnAccount(
    DR_REGION,
    Effect.gen(function* () {
      const ec2 = yield* Ec2
      const rds = yield* Rds
      const subnets = yield* awsCall("ec2:DescribeSubnets", (abortSignal) =>
        ec2.send(new DescribeSubnetsCommand({ Filters: [{ Name: "default-for-az", Values: ["true"] }] }), { abortSignal })
      )
      const vpcId = subnets.Subnets?.[0]?.VpcId ?? ""
      yield* awsCall("rds:CreateDBSubnetGroup", (abortSignal) =>
        rds.send(
          new CreateDBSubnetGroupCommand({
            DBSubnetGroupName: name,
            DBSubnetGroupDescription: "failover target",
            SubnetIds: (subnets.Subnets ?? []).map((subnet) => subnet.SubnetId ?? "")
          }),
          { abortSignal }
        )
      )
      const group = yield* awsCall("ec2:CreateSecurityGroup", (abortSignal) =>
        ec2.send(new CreateSecurityGroupCommand({ GroupName: `${name}-db`, Description: "failover target", VpcId: vpcId }), { abortSignal })
      )
      return { subnetGroup: name, securityGroupId: group.GroupId ?? "" }
    })
  )

let local: LocalStack
let scratch: string
let stackFile: string

const run = <A, E>(effect: Effect.Effect<A, E, StackServices>) => runOn(local, effect)

/** An EC2 client of the DR account in the DR region, through the replicator role. */
const inDrAccount = <A, E>(effect: Effect.Effect<A, E, Ec2>) =>
  inRoleAccount({ roleArn: drRoleArn(dr), externalId: dr.externalId, sessionName: "failover-test", region: DR_REGION }, effect)

const cli = (...args: ReadonlyArray<string>) => runCli(stackFile, ...args)

/** What `failover --json` printed, read with the CLI's own schema. */
const reportedBy = (stdout: string): FailoverResult => Schema.decodeUnknownSync(Schema.parseJson(FailoverResult))(stdout)

/** A recovery point in the source region: its ARN, the resource it was taken of and when. */
interface TakenSnapshot {
  readonly arn: string
  readonly resourceArn: string
  readonly takenAt: number
}

/** A DB snapshot of the instance. */
const dbSnapshot = (instanceId: string, snapshotId: string) =>
  Effect.gen(function* () {
    const rds = yield* Rds
    const created = yield* awsCall("rds:CreateDBSnapshot", (abortSignal) =>
      rds.send(new CreateDBSnapshotCommand({ DBInstanceIdentifier: instanceId, DBSnapshotIdentifier: snapshotId }), { abortSignal })
    )
    const taken: TakenSnapshot = {
      arn: created.DBSnapshot?.DBSnapshotArn ?? "",
      resourceArn: `arn:aws:rds:${EMULATOR_REGION}:${EMULATOR_ACCOUNT}:db:${instanceId}`,
      takenAt: created.DBSnapshot?.SnapshotCreateTime?.getTime() ?? 0
    }
    return taken
  })

/** A snapshot of the Aurora cluster (the cluster is made on first use). */
const clusterSnapshot = (clusterId: string, snapshotId: string) =>
  Effect.gen(function* () {
    const rds = yield* Rds
    const arn = yield* auroraClusterSnapshot(rds, clusterId, snapshotId, [{ Key: "backup-actions:managed", Value: "true" }])
    const described = yield* awsCall("rds:DescribeDBClusterSnapshots", (abortSignal) =>
      rds.send(new DescribeDBClusterSnapshotsCommand({ DBClusterSnapshotIdentifier: snapshotId }), { abortSignal })
    )
    const taken: TakenSnapshot = {
      arn,
      resourceArn: `arn:aws:rds:${EMULATOR_REGION}:${EMULATOR_ACCOUNT}:cluster:${clusterId}`,
      takenAt: described.DBClusterSnapshots?.[0]?.SnapshotCreateTime?.getTime() ?? 0
    }
    return taken
  })

/** A snapshot replicated to the DR region by the sharer through its AWS Backup event; returns its time and its replica. */
const replicatedSnapshot = (resourceType: "RDS" | "Aurora", takeSnapshot: Effect.Effect<TakenSnapshot, AwsError, Rds>) =>
  Effect.gen(function* () {
    const taken = yield* takeSnapshot
    yield* sendRecoveryPointEvent({ recoveryPointArn: taken.arn, resourceArn: taken.resourceArn, resourceType, vault: "Default" })
    const step = yield* waitForStep(local.stack.ledgerTable, taken.arn, `replicate:${EMULATOR_ACCOUNT}:${DR_REGION}`)
    assert.strictEqual(step["status"], "succeeded", String(step["reason"]))
    return { takenAt: taken.takenAt, replicaArn: String(step["outcome"].replicaArn) }
  })

/** Two replicated snapshots a moment apart; returns the newer, which a failover has to choose. */
const twoReplicatedSnapshots = async (resourceType: "RDS" | "Aurora", takeSnapshot: (snapshotId: string) => Effect.Effect<TakenSnapshot, AwsError, Rds>) => {
  const older = await run(replicatedSnapshot(resourceType, takeSnapshot("awsbackup-job-1")))
  await new Promise((resolve) => setTimeout(resolve, 1_500))
  const newer = await run(replicatedSnapshot(resourceType, takeSnapshot("awsbackup-job-2")))
  assert.isAbove(newer.takenAt, older.takenAt)
  return newer
}

/** Runs `failover --json` of the source into the network and reads what it printed. */
const failoverInto = async (network: { readonly subnetGroup: string; readonly securityGroupId: string }, sourceArn: string, ...options: ReadonlyArray<string>) => {
  const result = await cli(
    "failover",
    ...["--source", sourceArn, "--region", DR_REGION, ...options],
    ...["--db-subnet-group", network.subnetGroup, "--security-group-ids", network.securityGroupId, "--json"]
  )
  assert.strictEqual(result.status, 0, result.stderr)
  return reportedBy(result.stdout)
}

beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), "failover-test-"))
  local = await startLocalStack({ name: "failover-test", policy, services: ["sharer"] })
  await run(provisionDr(dr))
  await run(provisionDr(sameAccount))
  stackFile = join(scratch, "stack.json")
  writeFileSync(
    stackFile,
    JSON.stringify({ endpoint: local.emulator.endpoint, region: EMULATOR_REGION, busName: local.stack.busName, artifactBucket: local.stack.artifactBucket, ledgerTable: local.stack.ledgerTable })
  )
})

afterAll(async () => {
  await local?.stop()
  rmSync(scratch, { recursive: true, force: true })
})

describe("failover from the DR replicas, on the emulator", () => {
  it("restores a new DB instance in the DR region's pilot-light network from the newest replica of the instance and reports its age as the RPO", async () => {
    // Prepare: two snapshots of the instance, a moment apart, each replicated to the DR region
    await run(
      Effect.flatMap(Rds, (rds) =>
        awsCall("rds:CreateDBInstance", (abortSignal) =>
          rds.send(
            new CreateDBInstanceCommand({
              DBInstanceIdentifier: "orders",
              DBInstanceClass: "db.m5.large",
              Engine: "postgres",
              AllocatedStorage: 20,
              MasterUsername: "owner",
              MasterUserPassword: "not-a-secret-0"
            }),
            { abortSignal }
          )
        )
      )
    )
    const newer = await twoReplicatedSnapshots("RDS", (snapshotId) => dbSnapshot("orders", snapshotId))
    const network = await run(pilotLightNetwork("pilot-light"))
    const before = Date.now()
    // Act
    const reported = await failoverInto(network, `arn:aws:rds:${EMULATOR_REGION}:${EMULATOR_ACCOUNT}:db:orders`, "--new-instance-id", "orders-dr")
    const after = Date.now()
    // Assess: the newest replica was restored, in the DR region, as asked
    assert.strictEqual(reported.replica.arn, newer.replicaArn)
    assert.strictEqual(reported.restored.kind, "db-instance")
    assert.strictEqual(reported.restored.id, "orders-dr")
    assert.strictEqual(reported.restored.status, "available")
    const instances = await run(
      inOwnAccount(
        DR_REGION,
        Effect.flatMap(Rds, (rds) => awsCall("rds:DescribeDBInstances", (abortSignal) => rds.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: "orders-dr" }), { abortSignal })))
      )
    )
    const instance = instances.DBInstances?.[0]
    assert.strictEqual(instance?.DBInstanceClass, "db.t4g.micro")
    assert.strictEqual(instance?.DBSubnetGroup?.DBSubnetGroupName, network.subnetGroup)
    assert.deepStrictEqual(
      (instance?.VpcSecurityGroups ?? []).map((group) => group.VpcSecurityGroupId),
      [network.securityGroupId]
    )
    assert.strictEqual(instance?.DBInstanceStatus, "available")
    assert.strictEqual(reported.restored.endpoint, `${instance?.Endpoint?.Address}:${instance?.Endpoint?.Port}`)
    assert.deepInclude(instance?.TagList ?? [], { Key: "backup-actions:restored-from", Value: newer.replicaArn })
    // Assess: the RPO is the newest replica's age, counted from its source snapshot
    assert.strictEqual(reported.rpoFrom, "source snapshot")
    assert.strictEqual(Date.parse(reported.replica.sourceTakenAt ?? ""), newer.takenAt)
    assert.isAtLeast(reported.rpoSeconds, Math.floor((before - newer.takenAt) / 1000))
    assert.isAtMost(reported.rpoSeconds, Math.ceil((after - newer.takenAt) / 1000))
  })

  it("creates a volume in the DR account's zone from the newest replica of an EBS volume, through the DR role", async () => {
    // Prepare: a volume's snapshot in the source account, replicated to the DR account
    const seeded = await run(
      Effect.gen(function* () {
        const ec2 = yield* Ec2
        const volume = yield* awsCall("ec2:CreateVolume", (abortSignal) => ec2.send(new CreateVolumeCommand({ AvailabilityZone: `${EMULATOR_REGION}a`, Size: 2 }), { abortSignal }))
        const snapshot = yield* awsCall("ec2:CreateSnapshot", (abortSignal) => ec2.send(new CreateSnapshotCommand({ VolumeId: volume.VolumeId }), { abortSignal }))
        return { volumeId: volume.VolumeId ?? "", snapshotId: snapshot.SnapshotId ?? "", takenAt: snapshot.StartTime?.getTime() ?? 0 }
      })
    )
    const volumeArn = `arn:aws:ec2:${EMULATOR_REGION}:${EMULATOR_ACCOUNT}:volume/${seeded.volumeId}`
    await run(sendRecoveryPointEvent({ recoveryPointArn: snapshotArn(seeded.snapshotId), resourceArn: volumeArn, resourceType: "EBS", vault: "Default" }))
    const step = await run(waitForStep(local.stack.ledgerTable, snapshotArn(seeded.snapshotId), `replicate:${dr.destinationAccount}:${DR_REGION}`))
    assert.strictEqual(step["status"], "succeeded", String(step["reason"]))
    const before = Date.now()
    // Act
    const result = await cli("failover", "--source", volumeArn, "--region", DR_REGION, "--zone", `${DR_REGION}b`, "--role-arn", drRoleArn(dr), "--external-id", dr.externalId, "--json")
    const after = Date.now()
    // Assess: a volume of the DR account, from the replica, in the zone asked for
    assert.strictEqual(result.status, 0, result.stderr)
    const reported = reportedBy(result.stdout)
    assert.strictEqual(reported.replica.arn, step["outcome"].replicaArn)
    const volumes = await run(
      inDrAccount(Effect.flatMap(Ec2, (ec2) => awsCall("ec2:DescribeVolumes", (abortSignal) => ec2.send(new DescribeVolumesCommand({ VolumeIds: [reported.restored.id] }), { abortSignal }))))
    )
    const volume = volumes.Volumes?.[0]
    assert.strictEqual(volume?.SnapshotId, reported.replica.id)
    assert.strictEqual(volume?.AvailabilityZone, `${DR_REGION}b`)
    assert.strictEqual(volume?.State, "available")
    const replica = await run(
      inDrAccount(Effect.flatMap(Ec2, (ec2) => awsCall("ec2:DescribeSnapshots", (abortSignal) => ec2.send(new DescribeSnapshotsCommand({ SnapshotIds: [reported.replica.id] }), { abortSignal }))))
    )
    assert.strictEqual(replica.Snapshots?.[0]?.OwnerId, dr.destinationAccount)
    // Assess: the RPO counts from the source snapshot, which the replica's tags recorded
    assert.strictEqual(reported.rpoFrom, "source snapshot")
    assert.isAtLeast(reported.rpoSeconds, Math.floor((before - seeded.takenAt) / 1000))
    assert.isAtMost(reported.rpoSeconds, Math.ceil((after - seeded.takenAt) / 1000))
  })

  it("restores an Aurora cluster from the newest replica of the cluster, adds its writer instance and prints the writer endpoint and the RPO", async () => {
    // Prepare: two snapshots of the cluster, a moment apart, each replicated to the DR region
    const newer = await twoReplicatedSnapshots("Aurora", (snapshotId) => clusterSnapshot("ledger", snapshotId))
    const network = await run(pilotLightNetwork("pilot-light-aurora"))
    const before = Date.now()
    // Act
    const reported = await failoverInto(network, `arn:aws:rds:${EMULATOR_REGION}:${EMULATOR_ACCOUNT}:cluster:ledger`)
    const after = Date.now()
    // Assess: the newest replica was restored into a cluster named after the source and the time
    assert.strictEqual(reported.replica.arn, newer.replicaArn)
    assert.strictEqual(reported.restored.kind, "db-cluster")
    assert.match(reported.restored.id, /^failover-ledger-\d{12}$/)
    assert.strictEqual(reported.restored.instanceId, `${reported.restored.id}-writer`)
    assert.strictEqual(reported.restored.status, "available")
    const { clusters, instances } = await run(
      inOwnAccount(
        DR_REGION,
        Effect.flatMap(Rds, (rds) =>
          Effect.all({
            clusters: awsCall("rds:DescribeDBClusters", (abortSignal) => rds.send(new DescribeDBClustersCommand({ DBClusterIdentifier: reported.restored.id }), { abortSignal })),
            instances: awsCall("rds:DescribeDBInstances", (abortSignal) =>
              rds.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: reported.restored.instanceId }), { abortSignal })
            )
          })
        )
      )
    )
    const cluster = clusters.DBClusters?.[0]
    assert.strictEqual(cluster?.Status, "available")
    assert.strictEqual(cluster?.Engine, "aurora-postgresql")
    assert.strictEqual(cluster?.DBSubnetGroup, network.subnetGroup)
    assert.deepStrictEqual(
      (cluster?.VpcSecurityGroups ?? []).map((group) => group.VpcSecurityGroupId),
      [network.securityGroupId]
    )
    assert.deepInclude(cluster?.TagList ?? [], { Key: "backup-actions:restored-from", Value: newer.replicaArn })
    assert.deepStrictEqual(cluster?.DBClusterMembers?.map((member) => ({ id: member.DBInstanceIdentifier, writer: member.IsClusterWriter })), [
      { id: reported.restored.instanceId, writer: true }
    ])
    // Assess: the writer, of the class Aurora's default, in the cluster, available
    const writer = instances.DBInstances?.[0]
    assert.strictEqual(writer?.DBClusterIdentifier, reported.restored.id)
    assert.strictEqual(writer?.DBInstanceClass, "db.t4g.medium")
    assert.strictEqual(writer?.Engine, "aurora-postgresql")
    assert.strictEqual(writer?.DBInstanceStatus, "available")
    assert.deepInclude(writer?.TagList ?? [], { Key: "backup-actions:failover-of", Value: `arn:aws:rds:${EMULATOR_REGION}:${EMULATOR_ACCOUNT}:cluster:ledger` })
    // Assess: the endpoint printed is the cluster's writer endpoint, and the RPO counts from the newer source snapshot
    assert.strictEqual(reported.restored.endpoint, `${cluster?.Endpoint}:${cluster?.Port}`)
    assert.strictEqual(reported.rpoFrom, "source snapshot")
    assert.strictEqual(Date.parse(reported.replica.sourceTakenAt ?? ""), newer.takenAt)
    assert.isAtLeast(reported.rpoSeconds, Math.floor((before - newer.takenAt) / 1000))
    assert.isAtMost(reported.rpoSeconds, Math.ceil((after - newer.takenAt) / 1000))
  })

  it("prints the restored cluster, its writer and the writer endpoint as text, with the identifier and the class asked for", async () => {
    // Prepare
    const replica = await run(replicatedSnapshot("Aurora", clusterSnapshot("payments", "awsbackup-job-payments-1")))
    // Act
    const result = await cli(
      "failover",
      ...["--source", `arn:aws:rds:${EMULATOR_REGION}:${EMULATOR_ACCOUNT}:cluster:payments`, "--region", DR_REGION],
      ...["--new-instance-id", "payments-dr", "--instance-class", "db.r6g.large"]
    )
    // Assess
    assert.strictEqual(result.status, 0, result.stderr)
    const described = await run(
      inOwnAccount(
        DR_REGION,
        Effect.flatMap(Rds, (rds) =>
          Effect.all({
            clusters: awsCall("rds:DescribeDBClusters", (abortSignal) => rds.send(new DescribeDBClustersCommand({ DBClusterIdentifier: "payments-dr" }), { abortSignal })),
            instances: awsCall("rds:DescribeDBInstances", (abortSignal) => rds.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: "payments-dr-writer" }), { abortSignal }))
          })
        )
      )
    )
    const cluster = described.clusters.DBClusters?.[0]
    assert.strictEqual(described.instances.DBInstances?.[0]?.DBInstanceClass, "db.r6g.large")
    const lines = result.stdout.split("\n")
    assert.include(lines, `  replica   ${replica.replicaArn} (source taken ${new Date(replica.takenAt).toISOString()})`)
    assert.include(lines, "  restored  DB cluster payments-dr with writer DB instance payments-dr-writer: available")
    assert.include(lines, `  endpoint  ${cluster?.Endpoint}:${cluster?.Port} (writer)`)
    assert.match(result.stdout, /\n {2}RPO {7}\d+m \d{2}s \(\d+ s\)\n$/)
  })

  it("exits 1 and says where it looked when the source has no replica", async () => {
    // Act
    const instance = await cli("failover", "--source", `arn:aws:rds:${EMULATOR_REGION}:${EMULATOR_ACCOUNT}:db:never-replicated`, "--region", DR_REGION)
    const cluster = await cli("failover", "--source", `arn:aws:rds:${EMULATOR_REGION}:${EMULATOR_ACCOUNT}:cluster:never-replicated`, "--region", DR_REGION)
    // Assess
    assert.strictEqual(instance.status, 1)
    assert.include(instance.stderr, `no replica of arn:aws:rds:${EMULATOR_REGION}:${EMULATOR_ACCOUNT}:db:never-replicated in ${DR_REGION}`)
    assert.strictEqual(instance.stdout, "")
    assert.strictEqual(cluster.status, 1)
    assert.include(
      cluster.stderr,
      `no replica of arn:aws:rds:${EMULATOR_REGION}:${EMULATOR_ACCOUNT}:cluster:never-replicated in ${DR_REGION} of the caller's account: no available DB cluster snapshot tagged backup-actions:managed-by=sharer and backup-actions:source-resource=`
    )
    assert.strictEqual(cluster.stdout, "")
  })
})
