import { PutRuleCommand, PutTargetsCommand } from "@aws-sdk/client-eventbridge"
import { SubscribeCommand } from "@aws-sdk/client-sns"
import {
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  type QueueAttributeName
} from "@aws-sdk/client-sqs"
import { Effect } from "effect"
import { type AwsError, EventBridge, Sns, Sqs, awsCall } from "@backup-actions/aws"
import type { EventPattern } from "@backup-actions/contracts"

/**
 * A queue that listens in on a topic or on the bus, so that a test or the demo can see what
 * was announced through the same wire protocol as any subscriber would.
 */
export interface Tap {
  readonly queueUrl: string
  /** Takes every message that arrived so far (waiting up to `waitSeconds` for the first). */
  readonly drain: (waitSeconds?: number) => Effect.Effect<ReadonlyArray<string>, AwsError, Sqs>
}

const createTapQueue = (name: string) =>
  Effect.gen(function* () {
    const sqs = yield* Sqs
    const created = yield* awsCall("sqs:CreateQueue", (abortSignal) => sqs.send(new CreateQueueCommand({ QueueName: name }), { abortSignal }))
    const url = created.QueueUrl ?? ""
    const attributes = yield* awsCall("sqs:GetQueueAttributes", (abortSignal) =>
      sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ["QueueArn"] }), { abortSignal })
    )
    return { url, arn: attributes.Attributes?.["QueueArn"] ?? "" }
  })

/** Receives and deletes every message in a queue, waiting up to `waitSeconds` for the first. */
export const drainQueue =
  (queueUrl: string) =>
  (waitSeconds = 0) =>
    Effect.gen(function* () {
      const sqs = yield* Sqs
      const bodies: Array<string> = []
      let wait = waitSeconds
      for (;;) {
        const received = yield* awsCall("sqs:ReceiveMessage", (abortSignal) =>
          sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: wait }), { abortSignal })
        )
        const messages = received.Messages ?? []
        if (messages.length === 0) return bodies
        bodies.push(...messages.map((message) => message.Body ?? ""))
        yield* awsCall("sqs:DeleteMessageBatch", (abortSignal) =>
          sqs.send(
            new DeleteMessageBatchCommand({
              QueueUrl: queueUrl,
              Entries: messages.map((message, index) => ({ Id: String(index), ReceiptHandle: message.ReceiptHandle }))
            }),
            { abortSignal }
          )
        )
        wait = 0
      }
    })

/** Every message published to the topic, raw, in a queue. */
export const tapTopic = (topicArn: string, name: string) =>
  Effect.gen(function* () {
    const sns = yield* Sns
    const queue = yield* createTapQueue(name)
    yield* awsCall("sns:Subscribe", (abortSignal) =>
      sns.send(
        new SubscribeCommand({ TopicArn: topicArn, Protocol: "sqs", Endpoint: queue.arn, Attributes: { RawMessageDelivery: "false" } }),
        { abortSignal }
      )
    )
    const tap: Tap = { queueUrl: queue.url, drain: drainQueue(queue.url) }
    return tap
  })

/** Every bus event that matches the pattern, as EventBridge delivers it, in a queue. */
export const tapBus = (busName: string, pattern: EventPattern, name: string) =>
  Effect.gen(function* () {
    const events = yield* EventBridge
    const queue = yield* createTapQueue(name)
    yield* awsCall("events:PutRule", (abortSignal) =>
      events.send(new PutRuleCommand({ Name: name, EventBusName: busName, EventPattern: JSON.stringify(pattern) }), { abortSignal })
    )
    yield* awsCall("events:PutTargets", (abortSignal) =>
      events.send(new PutTargetsCommand({ Rule: name, EventBusName: busName, Targets: [{ Id: "tap", Arn: queue.arn }] }), { abortSignal })
    )
    const tap: Tap = { queueUrl: queue.url, drain: drainQueue(queue.url) }
    return tap
  })

const queueCounts = (queueUrl: string, attributeNames: ReadonlyArray<QueueAttributeName>) =>
  Effect.flatMap(Sqs, (sqs) =>
    awsCall("sqs:GetQueueAttributes", (abortSignal) =>
      sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: [...attributeNames] }), { abortSignal })
    )
  ).pipe(Effect.map((result) => attributeNames.reduce((sum, name) => sum + Number(result.Attributes?.[name] ?? "0"), 0)))

/**
 * Messages still in a queue, visible, in flight or delayed: a deleted message is in none of
 * them, so zero means every message was handled or moved on.
 */
export const messagesIn = (queueUrl: string) =>
  queueCounts(queueUrl, ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed"])

/** Messages sent with a delay that has not passed yet: how a deferred message shows before it comes back. */
export const delayedMessagesIn = (queueUrl: string) => queueCounts(queueUrl, ["ApproximateNumberOfMessagesDelayed"])

/**
 * Receives what is visible in a queue (up to 10, waiting a second for the first) with every
 * message attribute, and leaves it there: dead letters are read for the reason beside them.
 */
export const receiveMessages = (queueUrl: string) =>
  Effect.flatMap(Sqs, (sqs) =>
    awsCall("sqs:ReceiveMessage", (abortSignal) =>
      sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1, MessageAttributeNames: ["All"] }), { abortSignal })
    )
  ).pipe(Effect.map((result) => result.Messages ?? []))
