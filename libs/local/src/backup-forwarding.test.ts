import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { DescribeArchiveCommand, DescribeReplayCommand, PutEventsCommand, StartReplayCommand } from "@aws-sdk/client-eventbridge"
import { SendMessageCommand } from "@aws-sdk/client-sqs"
import { Duration, Effect, Schedule } from "effect"
import { EventBridge, Sqs, awsCall } from "@backup-actions/aws"
import { RecoveryPointStateChange } from "@backup-actions/contracts"
import { topology } from "@backup-actions/config"
import { type BackupForwarding, forwardBackupEventsOnce, startBackupForwarding } from "./backup-forwarding"
import { EMULATOR_ACCOUNT, EMULATOR_REGION, type Emulator, emulatorClients, startEmulator } from "./emulator"
import { type ProvisionedStack, provision } from "./provision"
import { messagesIn, tapBus } from "./taps"

let emulator: Emulator
let stack: ProvisionedStack
let forwarding: BackupForwarding

const onEmulator = () => emulatorClients(emulator.endpoint)

beforeAll(async () => {
  emulator = await startEmulator({ name: "forwarding-test" })
  const names = topology({ prefix: "forwarding-test", account: EMULATOR_ACCOUNT, region: EMULATOR_REGION })
  stack = await Effect.runPromise(Effect.scoped(provision(names, EMULATOR_REGION, []).pipe(Effect.provide(onEmulator()))))
  // The leg as the local runtime runs it (startLocalStack, the service harness).
  forwarding = startBackupForwarding(emulator.endpoint, { queueUrl: stack.backupEventsQueue.url, busName: stack.busName })
})
afterAll(async () => {
  await forwarding?.stop()
  await emulator?.stop()
})

const SNAPSHOT_ARN = `arn:aws:ec2:${EMULATOR_REGION}::snapshot/snap-0f0a1b2c3d4e5f607`
const TIME = "2026-11-20T03:14:07Z"

/**
 * A "Recovery Point State Change" exactly as AWS Backup puts it on the default bus (the fields
 * of AWS's documented example): the recovery point in resources[] only.
 */
const awsSample = {
  Source: "aws.backup",
  DetailType: "Recovery Point State Change",
  Time: new Date(TIME),
  Resources: [SNAPSHOT_ARN],
  Detail: JSON.stringify({
    backupVaultName: "archive-direct",
    backupVaultArn: `arn:aws:backup:${EMULATOR_REGION}:${EMULATOR_ACCOUNT}:backup-vault:archive-direct`,
    creationDate: "2026-11-20T03:00:00.000Z",
    iamRoleArn: `arn:aws:iam::${EMULATOR_ACCOUNT}:role/service-role/AWSBackupDefaultServiceRole`,
    resourceType: "EBS",
    resourceArn: `arn:aws:ec2:${EMULATOR_REGION}:${EMULATOR_ACCOUNT}:volume/vol-0f0a1b2c3d4e5f607`,
    status: "COMPLETED",
    isEncrypted: "false",
    storageClass: "WARM",
    completionDate: "2026-11-20T03:14:02.000Z",
    createdBy: {
      backupPlanId: "bde0f455-4e24-4668-aeaa-4932a97f5cc5",
      backupPlanArn: `arn:aws:backup:${EMULATOR_REGION}:${EMULATOR_ACCOUNT}:backup-plan:bde0f455-4e24-4668-aeaa-4932a97f5cc5`,
      backupPlanVersion: "YTkzNmM0MmUtMWRhNS00Y2RkLThmZGUtNjA5NTc4NGM1YTc5",
      backupPlanRuleId: "1f97bafa-14d6-4f39-94fd-94b51bd6d0d5"
    },
    lifecycle: { deleteAfterDays: 100 },
    calculatedLifeCycle: { deleteAt: "2027-02-28T03:00:00.000Z" }
  })
}

interface Delivered {
  readonly source: string
  readonly "detail-type": string
  readonly time: string
  readonly resources: ReadonlyArray<string>
  readonly detail: unknown
  readonly "replay-name"?: string
}

const putOnDefaultBus = (entry: typeof awsSample) =>
  Effect.flatMap(EventBridge, (events) =>
    awsCall("events:PutEvents", (abortSignal) => events.send(new PutEventsCommand({ Entries: [{ ...entry, EventBusName: "default" }] }), { abortSignal }))
  )

describe("the local forwarding leg of AWS Backup's events", () => {
  it.live("puts AWS's exact event from the default bus on the project's bus with resources[] intact, and the bus archives it so", () =>
    Effect.gen(function* () {
      // Prepare: a tap on the project's bus, as any service's rule sees it
      const tap = yield* tapBus(stack.busName, RecoveryPointStateChange.pattern(), "forwarding-test-tap")
      // Act
      yield* putOnDefaultBus(awsSample)
      const delivered: Array<Delivered> = []
      for (let round = 0; round < 10 && delivered.length === 0; round += 1) delivered.push(...(yield* tap.drain(1)).map((body): Delivered => JSON.parse(body)))
      // Assess: what the services get is what AWS Backup sent
      assert.strictEqual(delivered.length, 1)
      const event = delivered[0]
      assert.deepStrictEqual(
        [event?.source, event?.["detail-type"], event?.time, event?.resources, event?.detail],
        [awsSample.Source, awsSample.DetailType, TIME, [SNAPSHOT_ARN], JSON.parse(awsSample.Detail)]
      )
      const decoded = yield* RecoveryPointStateChange.decode(event)
      assert.deepStrictEqual(decoded.resources, [SNAPSHOT_ARN])
      assert.strictEqual(yield* messagesIn(stack.backupEventsQueue.url), 0)
      // Assess: the archive kept it as forwarded, resources[] and all (a replay shows what it kept)
      const events = yield* EventBridge
      const archive = yield* awsCall("events:DescribeArchive", (abortSignal) =>
        events.send(new DescribeArchiveCommand({ ArchiveName: stack.archiveName }), { abortSignal })
      )
      assert.strictEqual(archive.EventCount, 1)
      yield* awsCall("events:StartReplay", (abortSignal) =>
        events.send(
          new StartReplayCommand({
            ReplayName: "forwarding-test-replay",
            EventSourceArn: archive.ArchiveArn,
            EventStartTime: new Date(Date.now() - 3_600_000),
            EventEndTime: new Date(),
            Destination: { Arn: stack.busArn }
          }),
          { abortSignal }
        )
      )
      yield* awsCall("events:DescribeReplay", (abortSignal) => events.send(new DescribeReplayCommand({ ReplayName: "forwarding-test-replay" }), { abortSignal })).pipe(
        Effect.filterOrFail((replay) => replay.State === "COMPLETED"),
        Effect.retry(Schedule.spaced(Duration.millis(200)).pipe(Schedule.intersect(Schedule.recurs(50))))
      )
      const replayed: Array<Delivered> = []
      for (let round = 0; round < 10 && replayed.length === 0; round += 1) replayed.push(...(yield* tap.drain(1)).map((body): Delivered => JSON.parse(body)))
      assert.deepStrictEqual(
        replayed.map((entry) => [entry["replay-name"], entry.resources, entry.detail]),
        [["forwarding-test-replay", [SNAPSHOT_ARN], JSON.parse(awsSample.Detail)]]
      )
    }).pipe(Effect.scoped, Effect.provide(onEmulator()))
  )
})

describe("one pass of the forwarding leg", () => {
  it.live("deletes what it forwarded and leaves a message that is not an event for the leg's DLQ", () =>
    Effect.gen(function* () {
      // Prepare: a stack of its own, whose leg no loop runs; an AWS Backup event and a stray body in its queue
      const names = topology({ prefix: "forwarding-once-test", account: EMULATOR_ACCOUNT, region: EMULATOR_REGION })
      const own = yield* provision(names, EMULATOR_REGION, [])
      const tap = yield* tapBus(own.busName, RecoveryPointStateChange.pattern(), "forwarding-once-test-tap")
      const sqs = yield* Sqs
      yield* awsCall("sqs:SendMessage", (abortSignal) => sqs.send(new SendMessageCommand({ QueueUrl: own.backupEventsQueue.url, MessageBody: "not an event" }), { abortSignal }))
      yield* putOnDefaultBus(awsSample)
      // Act
      let forwarded = 0
      for (let round = 0; round < 5 && forwarded === 0; round += 1) {
        forwarded += yield* forwardBackupEventsOnce({ queueUrl: own.backupEventsQueue.url, busName: own.busName }, 1)
      }
      // Assess: one event on the bus; the stray body still in the queue (in flight), on its way to the DLQ
      const delivered = yield* tap.drain(2)
      assert.strictEqual(forwarded, 1)
      assert.deepStrictEqual(
        delivered.map((body): Delivered => JSON.parse(body)).map((event) => event.resources),
        [[SNAPSHOT_ARN]]
      )
      assert.strictEqual(yield* messagesIn(own.backupEventsQueue.url), 1)
    }).pipe(Effect.scoped, Effect.provide(onEmulator()))
  )
})
