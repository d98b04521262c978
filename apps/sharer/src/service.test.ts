import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { PutEventsCommand } from "@aws-sdk/client-eventbridge"
import { GetQueueAttributesCommand, ReceiveMessageCommand } from "@aws-sdk/client-sqs"
import { Effect, Layer } from "effect"
import { AllClientsLive, EventBridge, Sqs, awsCall } from "@backup-actions/aws"
import { PolicySource, ServiceSettings, patternsFor, topology, type Policy } from "@backup-actions/config"
import { DLQ_REASON_ATTRIBUTE, DLQ_SERVICE_ATTRIBUTE, pollOnce } from "@backup-actions/consumer"
import { EMULATOR_ACCOUNT, EMULATOR_REGION, type Emulator, type ProvisionedStack, emulatorAwsConfig, emulatorClients, provision, startEmulator } from "@backup-actions/local"
import { plan } from "./mock-accounts"
import { SharerServices, subscriptions } from "./service"

/** The sharer's queue, DLQ, rules and ledger on the emulator; events arrive through the forwarding rule as AWS Backup's do. */
let emulator: Emulator
let stack: ProvisionedStack
const names = topology({ prefix: "sharer-service-test", account: EMULATOR_ACCOUNT, region: EMULATOR_REGION })
const policy: Policy = { rules: [{ name: "dr", match: { resourceTypes: ["EBS"] }, replicate: plan() }] }

beforeAll(async () => {
  emulator = await startEmulator({ name: "sharer-service-test" })
  stack = await Effect.runPromise(
    Effect.scoped(provision(names, EMULATOR_REGION, [{ name: "sharer", patterns: patternsFor("sharer") }]).pipe(Effect.provide(emulatorClients(emulator.endpoint))))
  )
})
afterAll(() => emulator.stop())

const sharerLayer = () => {
  const settings = ServiceSettings.layer({
    busName: stack.busName,
    artifactBucket: stack.artifactBucket,
    ledgerTable: stack.ledgerTable,
    queueUrl: stack.queues.sharer?.url ?? "",
    deadLetterQueueUrl: stack.queues.sharer?.deadLetterUrl ?? "",
    workDir: "/tmp"
  })
  return SharerServices.pipe(
    Layer.provideMerge(Layer.mergeAll(AllClientsLive, settings, PolicySource.layer(policy))),
    Layer.provideMerge(emulatorAwsConfig(emulator.endpoint))
  )
}

/** A COMPLETED "Recovery Point State Change" as AWS Backup would send it, but with no recovery point in it. */
const sendWithoutRecoveryPoint = (resourceType: string, resourceArn: string) =>
  Effect.gen(function* () {
    const events = yield* EventBridge
    const result = yield* awsCall("events:PutEvents", (abortSignal) =>
      events.send(
        new PutEventsCommand({
          Entries: [
            {
              EventBusName: "default",
              Source: "aws.backup",
              DetailType: "Recovery Point State Change",
              Resources: [],
              Detail: JSON.stringify({ status: "COMPLETED", resourceType, resourceArn, backupVaultName: "Default", creationDate: new Date().toISOString() })
            }
          ]
        }),
        { abortSignal }
      )
    )
    assert.strictEqual(result.FailedEntryCount ?? 0, 0)
  })

/** Messages still in a queue, visible, in flight or delayed: a deleted message is in none of them. */
const messagesIn = (url: string) =>
  Effect.flatMap(Sqs, (sqs) =>
    awsCall("sqs:GetQueueAttributes", (abortSignal) =>
      sqs.send(
        new GetQueueAttributesCommand({
          QueueUrl: url,
          AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed"]
        }),
        { abortSignal }
      )
    )
  ).pipe(Effect.map((result) => Object.values(result.Attributes ?? {}).reduce((sum, count) => sum + Number(count), 0)))

const receiveAll = (url: string) =>
  Effect.flatMap(Sqs, (sqs) =>
    awsCall("sqs:ReceiveMessage", (abortSignal) =>
      sqs.send(new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, WaitTimeSeconds: 1, MessageAttributeNames: ["All"] }), { abortSignal })
    )
  ).pipe(Effect.map((result) => result.Messages ?? []))

describe("the sharer's recovery-point handler", () => {
  it.live("sends a recovery point event that names no recovery point to its DLQ with the reason, and ignores one its policy does not replicate", () =>
    Effect.gen(function* () {
      // Prepare: an EBS event the policy replicates and an RDS event it does not, neither naming its recovery point
      const ebsVolume = `arn:aws:ec2:${EMULATOR_REGION}:${EMULATOR_ACCOUNT}:volume/vol-0noarn0000000001`
      const rdsInstance = `arn:aws:rds:${EMULATOR_REGION}:${EMULATOR_ACCOUNT}:db:no-arn`
      yield* sendWithoutRecoveryPoint("EBS", ebsVolume)
      yield* sendWithoutRecoveryPoint("RDS", rdsInstance)
      // Act: the sharer's consumer, one message per receive, until both came
      let received = 0
      for (let round = 0; round < 20 && received < 2; round += 1) {
        received += yield* pollOnce(subscriptions, { service: "sharer", waitTimeSeconds: 1 })
      }
      // Assess: only the EBS event is in the DLQ, with the reason and the service; the queue is empty
      assert.strictEqual(received, 2)
      const dead = yield* receiveAll(stack.queues.sharer?.deadLetterUrl ?? "")
      assert.strictEqual(dead.length, 1)
      const event: { id: string; detail: { resourceArn: string } } = JSON.parse(dead[0]?.Body ?? "{}")
      assert.strictEqual(event.detail.resourceArn, ebsVolume)
      assert.strictEqual(
        dead[0]?.MessageAttributes?.[DLQ_REASON_ATTRIBUTE]?.StringValue,
        `"Recovery Point State Change" event ${event.id} for ${ebsVolume} names no recovery point (neither resources[] nor detail.recoveryPointArn)`
      )
      assert.strictEqual(dead[0]?.MessageAttributes?.[DLQ_SERVICE_ATTRIBUTE]?.StringValue, "sharer")
      assert.strictEqual(yield* messagesIn(stack.queues.sharer?.url ?? ""), 0)
    }).pipe(Effect.provide(sharerLayer()))
  )
})
