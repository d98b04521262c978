import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { CreateSnapshotCommand, CreateVolumeCommand, DescribeSnapshotsCommand, type Snapshot, type Tag } from "@aws-sdk/client-ec2"
import { CreateDBInstanceCommand, CreateDBSnapshotCommand, DescribeDBSnapshotsCommand } from "@aws-sdk/client-rds"
import { GetItemCommand } from "@aws-sdk/client-dynamodb"
import { GetQueueAttributesCommand } from "@aws-sdk/client-sqs"
import { unmarshall } from "@aws-sdk/util-dynamodb"
import { Duration, Effect, Schedule } from "effect"
import { DynamoDb, Ec2, Rds, Sqs, awsCall } from "@backup-actions/aws"
import { SCHEDULES, type Policy } from "@backup-actions/config"
import { EMULATOR_ACCOUNT, EMULATOR_REGION, drKeyAliasArn, drReplicateAction, drTopology, provisionDr, type ProvisionedDr } from "@backup-actions/local"
import { sendRecoveryPointEvent, snapshotArn, waitForStep } from "./backup-events"
import { fireSchedule } from "./local-schedules"
import { startLocalStack, type LocalStack } from "./stack"
import { inOwnAccount, inRoleAccount, runOn, type StackServices } from "./test-support"

/**
 * How many recovery points the catch-up finds without their events, in one run. Each costs the
 * emulator about a second here (a cross-account copy through a stand-in, on two shared cores);
 * the run of 1,000 is in apps/sharer/src/catch-up.test.ts.
 */
const MISSED = 40

const dr = drTopology()
/** RDS within the source account (the emulator can't copy a DB snapshot shared from another account). */
const sameAccount = drTopology({ destinationAccount: EMULATOR_ACCOUNT, keyAlias: "alias/backup-actions-dr-catch-up" })
const EBS_ACTION = `replicate:${dr.destinationAccount}:${dr.destinationRegion}`
const RDS_ACTION = `replicate:${EMULATOR_ACCOUNT}:${sameAccount.destinationRegion}`
const PROJECT_TAGS: ReadonlyArray<Tag> = [{ Key: "backup-actions:managed", Value: "true" }]

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
      replicate: { destinationAccount: EMULATOR_ACCOUNT, destinationRegion: sameAccount.destinationRegion, kmsKeyId: drKeyAliasArn(sameAccount), retentionDays: 30, maxConcurrentCopies: 20 }
    }
  ]
}

let local: LocalStack
let provisioned: ProvisionedDr

const run = <A, E>(effect: Effect.Effect<A, E, StackServices>) => runOn(local, effect)

/** An EC2 client of the destination account, through the replicator role, as the sharer gets one. */
const inDestination = <A, E>(effect: Effect.Effect<A, E, Ec2>) =>
  // Suspended: `provisioned` is only known once beforeAll has run.
  Effect.suspend(() => inRoleAccount({ roleArn: provisioned.roleArn, externalId: provisioned.externalId, sessionName: "catch-up-test", region: dr.destinationRegion }, effect))

/** A snapshot of a fresh volume in the source account, with the given tags. */
const snapshotWithTags = (tags: ReadonlyArray<Tag>) =>
  Effect.gen(function* () {
    const ec2 = yield* Ec2
    const volume = yield* awsCall("ec2:CreateVolume", (abortSignal) => ec2.send(new CreateVolumeCommand({ AvailabilityZone: `${EMULATOR_REGION}a`, Size: 1 }), { abortSignal }))
    const snapshot = yield* awsCall("ec2:CreateSnapshot", (abortSignal) =>
      ec2.send(new CreateSnapshotCommand({ VolumeId: volume.VolumeId, ...(tags.length === 0 ? {} : { TagSpecifications: [{ ResourceType: "snapshot", Tags: [...tags] }] }) }), {
        abortSignal
      })
    )
    return { snapshotId: snapshot.SnapshotId ?? "", volumeId: volume.VolumeId ?? "" }
  })

/** Every snapshot the sharer made in the destination account and region, every page. */
const replicasInDestination = inDestination(
  Effect.gen(function* () {
    const ec2 = yield* Ec2
    const found: Array<Snapshot> = []
    let nextToken: string | undefined
    do {
      const page = yield* awsCall("ec2:DescribeSnapshots", (abortSignal) =>
        ec2.send(
          new DescribeSnapshotsCommand({ OwnerIds: ["self"], Filters: [{ Name: "tag:backup-actions:managed-by", Values: ["sharer"] }], MaxResults: 1000, NextToken: nextToken }),
          { abortSignal }
        )
      )
      found.push(...(page.Snapshots ?? []))
      nextToken = page.NextToken
    } while (nextToken !== undefined && nextToken !== "")
    return found
  })
)

const ledgerItem = (recoveryPointArn: string, action: string) =>
  Effect.flatMap(DynamoDb, (dynamodb) =>
    awsCall("dynamodb:GetItem", (abortSignal) =>
      dynamodb.send(new GetItemCommand({ TableName: local.stack.ledgerTable, Key: { pk: { S: recoveryPointArn }, sk: { S: action } }, ConsistentRead: true }), { abortSignal })
    )
  ).pipe(Effect.map((answer) => (answer.Item === undefined ? undefined : unmarshall(answer.Item))))

/** Waits until the sharer's queue holds no message, visible or in flight: the catch-up's handler has returned. */
const sharerQueueDrained = Effect.gen(function* () {
  const sqs = yield* Sqs
  const attributes = yield* awsCall("sqs:GetQueueAttributes", (abortSignal) =>
    sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: local.stack.queues.sharer?.url, AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"] }),
      { abortSignal }
    )
  )
  const waiting = Number(attributes.Attributes?.ApproximateNumberOfMessages ?? "0") + Number(attributes.Attributes?.ApproximateNumberOfMessagesNotVisible ?? "0")
  if (waiting > 0) return yield* Effect.fail(`${waiting} messages left`)
}).pipe(Effect.retry({ schedule: Schedule.spaced(Duration.seconds(1)), times: 900 }))

const catchUpSchedule = () => {
  const schedule = SCHEDULES.find((entry) => entry.name === "sharer-catch-up")
  if (schedule === undefined) throw new Error("no sharer-catch-up schedule")
  return schedule
}

beforeAll(async () => {
  local = await startLocalStack({ name: "catch-up-test", policy, services: ["sharer"] })
  provisioned = await run(provisionDr(dr))
  await run(provisionDr(sameAccount))
}, 300_000)

afterAll(async () => {
  await local?.stop()
})

describe("the sharer's scheduled catch-up, on the emulator", () => {
  it(`replicates each of ${MISSED} missed EBS snapshots and a missed DB snapshot exactly once, and leaves the rest alone`, async () => {
    // Prepare: one snapshot replicated through its event, then many whose events never came, one that is not the project's, and a DB snapshot
    const replicatedBefore = await run(snapshotWithTags(PROJECT_TAGS))
    const replicatedBeforeArn = snapshotArn(replicatedBefore.snapshotId)
    await run(
      sendRecoveryPointEvent({
        recoveryPointArn: replicatedBeforeArn,
        resourceArn: `arn:aws:ec2:${EMULATOR_REGION}:${EMULATOR_ACCOUNT}:volume/${replicatedBefore.volumeId}`,
        resourceType: "EBS",
        vault: "Default"
      })
    )
    assert.strictEqual((await run(waitForStep(local.stack.ledgerTable, replicatedBeforeArn, EBS_ACTION)))["status"], "succeeded")
    const missed = await run(Effect.forEach(Array.from({ length: MISSED }), () => snapshotWithTags(PROJECT_TAGS), { concurrency: 8 }))
    const notOurs = await run(snapshotWithTags([]))
    const dbSnapshotArn = await run(
      Effect.gen(function* () {
        const rds = yield* Rds
        yield* awsCall("rds:CreateDBInstance", (abortSignal) =>
          rds.send(
            new CreateDBInstanceCommand({
              DBInstanceIdentifier: "ledger-db",
              DBInstanceClass: "db.t4g.micro",
              Engine: "postgres",
              AllocatedStorage: 20,
              MasterUsername: "owner",
              MasterUserPassword: "not-a-secret-0"
            }),
            { abortSignal }
          )
        )
        const created = yield* awsCall("rds:CreateDBSnapshot", (abortSignal) =>
          rds.send(new CreateDBSnapshotCommand({ DBInstanceIdentifier: "ledger-db", DBSnapshotIdentifier: "awsbackup-job-catch-up", Tags: [...PROJECT_TAGS] }), { abortSignal })
        )
        return created.DBSnapshot?.DBSnapshotArn ?? ""
      })
    )
    const startedAt = Date.now()

    // Act: the schedule fires once
    await run(fireSchedule(local.stack, catchUpSchedule()))
    await run(sharerQueueDrained)
    const tookSeconds = (Date.now() - startedAt) / 1000

    // Assess: every missed snapshot has exactly one replica in the DR account and region, and the one replicated before still has one
    const replicas = await run(replicasInDestination)
    const replicasPerSource = new Map<string, number>()
    for (const replica of replicas) {
      const source = replica.Tags?.find((tag) => tag.Key === "backup-actions:source-arn")?.Value ?? ""
      replicasPerSource.set(source, (replicasPerSource.get(source) ?? 0) + 1)
    }
    const expected = [replicatedBeforeArn, ...missed.map((entry) => snapshotArn(entry.snapshotId))]
    assert.deepStrictEqual([...replicasPerSource.keys()].sort(), [...expected].sort(), `took ${tookSeconds} s`)
    assert.isTrue([...replicasPerSource.values()].every((count) => count === 1))
    assert.isTrue(replicas.every((replica) => replica.Encrypted === true && replica.KmsKeyId === provisioned.keyArn))
    // Assess: one succeeded step each, run once; the earlier step was not run again
    const steps = await run(Effect.forEach(expected, (arn) => ledgerItem(arn, EBS_ACTION), { concurrency: 8 }))
    assert.isTrue(steps.every((step) => step?.["status"] === "succeeded" && step["attempts"] === 1))
    // Assess: the snapshot without the project's tag got no step
    assert.isUndefined(await run(ledgerItem(snapshotArn(notOurs.snapshotId), EBS_ACTION)))
    // Assess: the DB snapshot was replicated to the other region, once
    const dbStep = await run(ledgerItem(dbSnapshotArn, RDS_ACTION))
    assert.strictEqual(dbStep?.["status"], "succeeded", String(dbStep?.["reason"]))
    const dbReplicas = await run(
      inOwnAccount(
        sameAccount.destinationRegion,
        Effect.flatMap(Rds, (rds) =>
          awsCall("rds:DescribeDBSnapshots", (abortSignal) => rds.send(new DescribeDBSnapshotsCommand({ DBInstanceIdentifier: "ledger-db" }), { abortSignal }))
        )
      )
    )
    assert.deepStrictEqual(
      (dbReplicas.DBSnapshots ?? []).map((snapshot) => snapshot.DBSnapshotIdentifier),
      ["dr-awsbackup-job-catch-up"]
    )

    // Act: the schedule fires again
    await run(fireSchedule(local.stack, catchUpSchedule()))
    await run(sharerQueueDrained)
    // Assess: nothing more was copied
    assert.strictEqual((await run(replicasInDestination)).length, replicas.length)
  }, 900_000)
})
