import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { PutItemCommand } from "@aws-sdk/client-dynamodb"
import { SendMessageCommand } from "@aws-sdk/client-sqs"
import { Effect, Option } from "effect"
import { DynamoDb, Sqs, awsCall } from "@backup-actions/aws"
import { RecoveryPointStateChange } from "@backup-actions/contracts"
import { ServiceSettings } from "@backup-actions/config"
import { sendRecoveryPointEvent } from "./backup-events"
import { EMULATOR_ACCOUNT, EMULATOR_REGION, emulatorClients } from "./emulator"
import { type ServiceHarness, ledgerSteps, serviceSettingsFor, startServiceHarness } from "./service-harness"
import { delayedMessagesIn, messagesIn, tapBus } from "./taps"

let harness: ServiceHarness

beforeAll(async () => {
  harness = await startServiceHarness({ prefix: "harness-test", service: "streamer" })
})
afterAll(() => harness.stop())

const onEmulator = () => emulatorClients(harness.emulator.endpoint)

describe("the service harness", () => {
  it.effect("points a service's settings at its own queue and DLQ on the provisioned stack, with the topic only when given", () =>
    Effect.gen(function* () {
      // Prepare
      const stack = harness.stack
      // Act
      const plain = yield* Effect.provide(ServiceSettings, serviceSettingsFor(stack, "streamer", { workDir: "work" }))
      const notifying = yield* Effect.provide(ServiceSettings, serviceSettingsFor(stack, "streamer", { notificationTopicArn: stack.notificationTopicArn }))
      // Assess
      assert.deepStrictEqual(
        [plain.busName, plain.artifactBucket, plain.ledgerTable, plain.queueUrl, plain.deadLetterQueueUrl, plain.workDir],
        [stack.busName, stack.artifactBucket, stack.ledgerTable, stack.queues.streamer?.url, stack.queues.streamer?.deadLetterUrl, "work"]
      )
      assert.isTrue(Option.isNone(plain.notificationTopicArn))
      assert.deepStrictEqual(notifying.notificationTopicArn, Option.some(stack.notificationTopicArn))
    })
  )

  it.live("lists every step in the ledger as its recovery point and action, sorted", () =>
    Effect.gen(function* () {
      // Prepare
      const dynamodb = yield* DynamoDb
      const steps = [
        ["arn:snapshot/snap-b", "archive:direct"],
        ["arn:snapshot/snap-a", "replicate:222222222222:us-west-2"],
        ["arn:snapshot/snap-a", "archive:direct"]
      ]
      for (const [pk, sk] of steps) {
        yield* awsCall("dynamodb:PutItem", (abortSignal) =>
          dynamodb.send(new PutItemCommand({ TableName: harness.stack.ledgerTable, Item: { pk: { S: pk ?? "" }, sk: { S: sk ?? "" }, status: { S: "succeeded" } } }), {
            abortSignal
          })
        )
      }
      // Act
      const listed = yield* ledgerSteps(harness.stack.ledgerTable)
      // Assess
      assert.deepStrictEqual(listed, [
        "arn:snapshot/snap-a archive:direct",
        "arn:snapshot/snap-a replicate:222222222222:us-west-2",
        "arn:snapshot/snap-b archive:direct"
      ])
    }).pipe(Effect.provide(onEmulator()))
  )

  it.live("counts every message still in a queue, and the delayed ones apart", () =>
    Effect.gen(function* () {
      // Prepare: one message to take now, one delayed for a minute, in the service's DLQ (nothing else writes there)
      const sqs = yield* Sqs
      const queueUrl = harness.stack.queues.streamer?.deadLetterUrl ?? ""
      yield* awsCall("sqs:SendMessage", (abortSignal) => sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: "now" }), { abortSignal }))
      yield* awsCall("sqs:SendMessage", (abortSignal) =>
        sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: "later", DelaySeconds: 60 }), { abortSignal })
      )
      // Act
      const all = yield* messagesIn(queueUrl)
      const delayed = yield* delayedMessagesIn(queueUrl)
      // Assess
      assert.deepStrictEqual([all, delayed], [2, 1])
    }).pipe(Effect.provide(onEmulator()))
  )
})

describe("sending AWS Backup's recovery point events", () => {
  it.live("names the recovery point in resources[] only, as AWS Backup does, and nowhere when not given one", () =>
    Effect.gen(function* () {
      // Prepare: a tap on the default bus, where AWS Backup puts its events
      const tap = yield* tapBus("default", RecoveryPointStateChange.pattern(), "harness-test-backup-events")
      const recoveryPointArn = `arn:aws:ec2:${EMULATOR_REGION}::snapshot/snap-0harness00000001`
      const volumeArn = `arn:aws:ec2:${EMULATOR_REGION}:${EMULATOR_ACCOUNT}:volume/vol-0harness00000001`
      // Act
      yield* sendRecoveryPointEvent({ recoveryPointArn, resourceArn: volumeArn, resourceType: "EBS", vault: "Default" })
      yield* sendRecoveryPointEvent({ resourceArn: volumeArn, resourceType: "EBS", vault: "Default", status: "PARTIAL" })
      // Assess
      const delivered: Array<{ resources: Array<string>; detail: Record<string, unknown> }> = []
      for (let round = 0; round < 5 && delivered.length < 2; round += 1) delivered.push(...(yield* tap.drain(1)).map((body) => JSON.parse(body)))
      const byStatus = delivered.map((event) => [event.detail["status"], event.resources, "recoveryPointArn" in event.detail, event.detail["backupVaultName"]]).sort()
      assert.deepStrictEqual(byStatus, [
        ["COMPLETED", [recoveryPointArn], false, "Default"],
        ["PARTIAL", [], false, "Default"]
      ])
    }).pipe(Effect.provide(onEmulator()))
  )

  it.live("reach the harness's bus through the forwarding leg it runs, resources[] intact", () =>
    Effect.gen(function* () {
      // Prepare: a tap on the stack's bus, where the service's rules are
      const tap = yield* Effect.promise(() => harness.tapBus(RecoveryPointStateChange.pattern(), "forwarded"))
      const recoveryPointArn = `arn:aws:ec2:${EMULATOR_REGION}::snapshot/snap-0harness00000002`
      // Act
      yield* sendRecoveryPointEvent({ recoveryPointArn, resourceArn: `arn:aws:ec2:${EMULATOR_REGION}:${EMULATOR_ACCOUNT}:volume/vol-0harness00000002`, resourceType: "EBS", vault: "Default" })
      // Assess (the events of the test before may pass the tap too)
      const delivered: Array<{ resources: Array<string>; detail: { resourceArn: string } }> = []
      const ours = () => delivered.filter((event) => event.detail.resourceArn.endsWith("vol-0harness00000002"))
      for (let round = 0; round < 10 && ours().length === 0; round += 1) delivered.push(...(yield* tap.drain(1)).map((body) => JSON.parse(body)))
      assert.deepStrictEqual(
        ours().map((event) => event.resources),
        [[recoveryPointArn]]
      )
    }).pipe(Effect.provide(onEmulator()))
  )
})
