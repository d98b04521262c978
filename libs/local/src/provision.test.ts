import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { DescribeRuleCommand, ListTargetsByRuleCommand, PutEventsCommand } from "@aws-sdk/client-eventbridge"
import { GetQueueAttributesCommand, ReceiveMessageCommand } from "@aws-sdk/client-sqs"
import { Effect } from "effect"
import { EventBridge, Sqs, awsCall } from "@backup-actions/aws"
import { RecoveryPointStateChange } from "@backup-actions/contracts"
import { topology } from "@backup-actions/config"
import { forwardBackupEventsOnce } from "./backup-forwarding"
import { EMULATOR_ACCOUNT, EMULATOR_REGION, type Emulator, emulatorClients, startEmulator } from "./emulator"
import { MAX_RECEIVE_COUNT } from "@backup-actions/config"
import { provision } from "./provision"

let emulator: Emulator
const names = topology({ prefix: "provision-test", account: EMULATOR_ACCOUNT, region: EMULATOR_REGION })
const services = [
  { name: "streamer" as const, patterns: [RecoveryPointStateChange.pattern({ status: ["COMPLETED"], resourceType: ["EBS"] })] }
]

beforeAll(async () => {
  emulator = await startEmulator({ name: "provision-test" })
})
afterAll(() => emulator.stop())

describe("provisioning the local topology", () => {
  it.live("creates the service queue with a redrive policy to its DLQ and a rule with the contract's pattern", () =>
    Effect.gen(function* () {
      // Prepare + Act: provision twice, as a restarted stack does
      yield* provision(names, EMULATOR_REGION, services)
      const stack = yield* provision(names, EMULATOR_REGION, services)
      // Assess
      const sqs = yield* Sqs
      const events = yield* EventBridge
      const queue = stack.queues.streamer
      assert.isDefined(queue)
      const attributes = yield* awsCall("sqs:GetQueueAttributes", (abortSignal) =>
        sqs.send(new GetQueueAttributesCommand({ QueueUrl: queue?.url, AttributeNames: ["RedrivePolicy"] }), { abortSignal })
      )
      assert.deepStrictEqual(JSON.parse(attributes.Attributes?.RedrivePolicy ?? "{}"), {
        deadLetterTargetArn: queue?.deadLetterArn,
        maxReceiveCount: MAX_RECEIVE_COUNT
      })
      const rule = yield* awsCall("events:DescribeRule", (abortSignal) =>
        events.send(new DescribeRuleCommand({ Name: names.ruleName("streamer", "Recovery Point State Change"), EventBusName: names.busName }), { abortSignal })
      )
      assert.deepStrictEqual(JSON.parse(rule.EventPattern ?? "{}"), services[0]?.patterns[0])
      const targets = yield* awsCall("events:ListTargetsByRule", (abortSignal) =>
        events.send(new ListTargetsByRuleCommand({ Rule: names.forwardRuleName, EventBusName: "default" }), { abortSignal })
      )
      assert.deepStrictEqual(
        targets.Targets?.map((target) => target.Arn),
        [stack.backupEventsQueue.arn]
      )
    }).pipe(Effect.scoped, Effect.provide(emulatorClients(emulator.endpoint)))
  )

  it.live("delivers an AWS Backup event put on the default bus to the subscribed queue through the forwarding leg, and not an unrelated one", () =>
    Effect.gen(function* () {
      const stack = yield* provision(names, EMULATOR_REGION, services)
      const events = yield* EventBridge
      const sqs = yield* Sqs
      const entry = (resourceType: string) => ({
        Source: "aws.backup",
        DetailType: "Recovery Point State Change",
        Resources: [`arn:aws:ec2:us-east-1::snapshot/snap-${resourceType}`],
        Detail: JSON.stringify({ status: "COMPLETED", resourceType, resourceArn: "arn", backupVaultName: "Default" })
      })
      yield* awsCall("events:PutEvents", (abortSignal) =>
        events.send(new PutEventsCommand({ Entries: [entry("RDS"), entry("EBS")] }), { abortSignal })
      )
      let forwarded = 0
      for (let round = 0; round < 5 && forwarded < 2; round += 1) {
        forwarded += yield* forwardBackupEventsOnce({ queueUrl: stack.backupEventsQueue.url, busName: stack.busName }, 1)
      }
      const received = yield* awsCall("sqs:ReceiveMessage", (abortSignal) =>
        sqs.send(new ReceiveMessageCommand({ QueueUrl: stack.queues.streamer?.url, MaxNumberOfMessages: 10, WaitTimeSeconds: 2 }), { abortSignal })
      )
      const bodies = (received.Messages ?? []).map((message) => JSON.parse(message.Body ?? "{}"))
      assert.deepStrictEqual(
        bodies.map((body) => [body.detail.resourceType, body.resources]),
        [["EBS", ["arn:aws:ec2:us-east-1::snapshot/snap-EBS"]]]
      )
    }).pipe(Effect.scoped, Effect.provide(emulatorClients(emulator.endpoint)))
  )
})
