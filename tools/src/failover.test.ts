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
import { CreateDBInstanceCommand, CreateDBSnapshotCommand, CreateDBSubnetGroupCommand, DescribeDBInstancesCommand } from "@aws-sdk/client-rds"
import { Effect } from "effect"
import { Ec2, Rds, awsCall } from "@backup-actions/aws"
import type { Policy } from "@backup-actions/config"
import { EMULATOR_ACCOUNT, EMULATOR_REGION, drKeyAliasArn, drRoleArn, drTopology, provisionDr } from "@backup-actions/local"
import { sendRecoveryPointEvent, snapshotArn, waitForStep } from "./backup-events"
import { startLocalStack, type LocalStack } from "./stack"
import { runCli } from "./cli-process"
import { inOwnAccount, inRoleAccount, runOn, type StackServices } from "./test-support"

const dr = drTopology()
/** RDS within the source account (the emulator can't copy a DB snapshot shared from another account). */
const sameAccount = drTopology({ destinationAccount: EMULATOR_ACCOUNT, keyAlias: "alias/backup-actions-dr-failover" })
const DR_REGION = dr.destinationRegion

const policy: Policy = {
  rules: [
    {
      name: "dr-ebs",
      match: { resourceTypes: ["EBS"] },
      replicate: { destinationAccount: dr.destinationAccount, destinationRegion: DR_REGION, kmsKeyId: drKeyAliasArn(dr), roleArn: drRoleArn(dr), externalId: dr.externalId, retentionDays: 30, maxConcurrentCopies: 20 }
    },
    {
      name: "dr-rds",
      match: { resourceTypes: ["RDS"] },
      replicate: { destinationAccount: EMULATOR_ACCOUNT, destinationRegion: DR_REGION, kmsKeyId: drKeyAliasArn(sameAccount), retentionDays: 30, maxConcurrentCopies: 20 }
    }
  ]
}

/** A pilot-light network in the DR region: a DB subnet group over the default VPC's subnets and a security group. */
const pilotLightNetwork = inOwnAccount(
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
          DBSubnetGroupName: "pilot-light",
          DBSubnetGroupDescription: "failover target",
          SubnetIds: (subnets.Subnets ?? []).map((subnet) => subnet.SubnetId ?? "")
        }),
        { abortSignal }
      )
    )
    const group = yield* awsCall("ec2:CreateSecurityGroup", (abortSignal) =>
      ec2.send(new CreateSecurityGroupCommand({ GroupName: "pilot-light-db", Description: "failover target", VpcId: vpcId }), { abortSignal })
    )
    return { subnetGroup: "pilot-light", securityGroupId: group.GroupId ?? "" }
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

interface Reported {
  readonly region: string
  readonly replica: { readonly id: string; readonly arn: string; readonly sourceTakenAt?: string }
  readonly restored: { readonly kind: string; readonly id: string; readonly status: string; readonly endpoint?: string; readonly availabilityZone?: string }
  readonly rpoSeconds: number
  readonly rpoFrom: string
}

/** A DB snapshot of the instance, replicated to the DR region through its AWS Backup event; returns the source snapshot's time. */
const dbSnapshotReplicated = (instanceId: string, snapshotId: string) =>
  Effect.gen(function* () {
    const rds = yield* Rds
    const created = yield* awsCall("rds:CreateDBSnapshot", (abortSignal) =>
      rds.send(new CreateDBSnapshotCommand({ DBInstanceIdentifier: instanceId, DBSnapshotIdentifier: snapshotId }), { abortSignal })
    )
    const arn = created.DBSnapshot?.DBSnapshotArn ?? ""
    yield* sendRecoveryPointEvent({ recoveryPointArn: arn, resourceArn: `arn:aws:rds:${EMULATOR_REGION}:${EMULATOR_ACCOUNT}:db:${instanceId}`, resourceType: "RDS", vault: "Default" })
    const step = yield* waitForStep(local.stack.ledgerTable, arn, `replicate:${EMULATOR_ACCOUNT}:${DR_REGION}`)
    assert.strictEqual(step["status"], "succeeded", String(step["reason"]))
    return { takenAt: created.DBSnapshot?.SnapshotCreateTime?.getTime() ?? 0, replicaArn: String(step["outcome"].replicaArn) }
  })

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
    const older = await run(dbSnapshotReplicated("orders", "awsbackup-job-orders-1"))
    await new Promise((resolve) => setTimeout(resolve, 1_500))
    const newer = await run(dbSnapshotReplicated("orders", "awsbackup-job-orders-2"))
    assert.isAbove(newer.takenAt, older.takenAt)
    const network = await run(pilotLightNetwork)
    const before = Date.now()
    // Act
    const result = await cli(
      "failover",
      ...["--source", `arn:aws:rds:${EMULATOR_REGION}:${EMULATOR_ACCOUNT}:db:orders`, "--region", DR_REGION, "--new-instance-id", "orders-dr"],
      ...["--db-subnet-group", network.subnetGroup, "--security-group-ids", network.securityGroupId, "--json"]
    )
    const after = Date.now()
    // Assess: the newest replica was restored, in the DR region, as asked
    assert.strictEqual(result.status, 0, result.stderr)
    const reported: Reported = JSON.parse(result.stdout)
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
    const reported: Reported = JSON.parse(result.stdout)
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

  it("exits 1 and says where it looked when the source has no replica", async () => {
    // Act
    const result = await cli("failover", "--source", `arn:aws:rds:${EMULATOR_REGION}:${EMULATOR_ACCOUNT}:db:never-replicated`, "--region", DR_REGION)
    // Assess
    assert.strictEqual(result.status, 1)
    assert.include(result.stderr, `no replica of arn:aws:rds:${EMULATOR_REGION}:${EMULATOR_ACCOUNT}:db:never-replicated in ${DR_REGION}`)
    assert.strictEqual(result.stdout, "")
  })
})
