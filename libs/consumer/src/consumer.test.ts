import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { ReceiveMessageCommand, SendMessageCommand, type Message } from "@aws-sdk/client-sqs"
import { Deferred, Effect, Fiber, Layer, Schedule } from "effect"
import { Sqs, awsCall } from "@backup-actions/aws"
import { RecoveryPointStateChange, RestoreCompleted, subscribe } from "@backup-actions/contracts"
import { type ServiceHarness, delayedMessagesIn, emulatorClients, messagesIn, receiveMessages, startServiceHarness } from "@backup-actions/local"
import { LeaseLost, StepBusy, StepGaveUp } from "@backup-actions/ledger"
import { DLQ_REASON_ATTRIBUTE, DLQ_SERVICE_ATTRIBUTE, pollOnce, runConsumer } from "./consumer"
import { makeLambdaHandler } from "./lambda"
import { Publisher } from "./publisher"
import { UnprocessableEvent } from "./unprocessable"

/** A queue (named the reporter's) that Restore Completed events reach through the bus, with its DLQ. */
let harness: ServiceHarness

beforeAll(async () => {
  harness = await startServiceHarness({ prefix: "consumer-test", service: "reporter", patterns: [RestoreCompleted.pattern()] })
})
afterAll(() => harness.stop())

const layers = () => {
  const clients = emulatorClients(harness.emulator.endpoint)
  return Layer.mergeAll(clients, harness.settings, Publisher.Live.pipe(Layer.provide(Layer.merge(clients, harness.settings))))
}

const restoreDetail = {
  schemaVersion: 1 as const,
  correlationId: "arn:aws:ec2:us-east-1::snapshot/snap-1",
  idempotencyKey: "arn:aws:ec2:us-east-1::snapshot/snap-1#archive",
  status: "restored" as const,
  resourceType: "EBS",
  backupVaultName: "archive-volume",
  snapshotId: "snap-1",
  plan: { rule: "r", mode: "volume" as const, compression: "zstd" as const, deleteSourceAfterVerify: false }
}

/** Receives as Lambda's poller would, until `count` messages came, and hands them over as its event. */
const receiveAsLambdaEvent = (url: string, count: number) =>
  Effect.gen(function* () {
    const sqs = yield* Sqs
    const received: Array<Message> = []
    for (let round = 0; round < 10 && received.length < count; round += 1) {
      const batch = yield* awsCall("sqs:ReceiveMessage", (abortSignal) =>
        sqs.send(new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, WaitTimeSeconds: 1, MessageSystemAttributeNames: ["ApproximateReceiveCount"] }), {
          abortSignal
        })
      )
      received.push(...(batch.Messages ?? []))
    }
    return {
      received,
      event: {
        Records: received.map((message) => ({
          messageId: message.MessageId ?? "",
          receiptHandle: message.ReceiptHandle ?? "",
          body: message.Body ?? "",
          attributes: { ApproximateReceiveCount: message.Attributes?.ApproximateReceiveCount ?? "1" }
        }))
      }
    }
  })

/** A handler that rejects the restore of `rejectedSnapshot` and records the others it handles. */
const rejectingHandler = (rejectedSnapshot: string, reason: string) => {
  const seen = { rejections: 0, handled: new Array<string>() }
  const subscriptions = [
    subscribe(RestoreCompleted, (event) =>
      event.detail.snapshotId === rejectedSnapshot
        ? Effect.suspend(() => {
            seen.rejections += 1
            return Effect.fail(new UnprocessableEvent({ reason }))
          })
        : Effect.sync(() => seen.handled.push(event.detail.snapshotId))
    )
  ]
  return { seen, subscriptions }
}

describe("the consumer runtime", () => {
  it.live("sends malformed, unknown and unsupported messages to the DLQ with a reason and still handles the next one", () =>
    Effect.gen(function* () {
      // Prepare: three bad bodies and one good event, published through the bus
      const sqs = yield* Sqs
      const publisher = yield* Publisher
      const queueUrl = harness.stack.queues.reporter?.url ?? ""
      const bad = [
        "{ this is not json",
        JSON.stringify({ source: "aws.backup", "detail-type": "Backup Vault State Change", detail: {} }),
        JSON.stringify({
          version: "0", id: "x", source: "backup-actions", "detail-type": "Restore Completed", account: "1", time: "t", region: "r", resources: [],
          detail: { ...restoreDetail, schemaVersion: 7 }
        })
      ]
      for (const body of bad) {
        yield* awsCall("sqs:SendMessage", (abortSignal) => sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: body }), { abortSignal }))
      }
      yield* publisher.publish(RestoreCompleted, restoreDetail, [restoreDetail.correlationId])
      const handled: Array<string> = []
      const subscriptions = [
        subscribe(RestoreCompleted, (event) => Effect.sync(() => handled.push(event.detail.snapshotId))),
        subscribe(RecoveryPointStateChange, () => Effect.void)
      ]
      // Act
      let total = 0
      for (let round = 0; round < 10 && total < 4; round += 1) {
        total += yield* pollOnce(subscriptions, { service: "reporter", concurrency: 4, waitTimeSeconds: 1 })
      }
      // Assess
      assert.deepStrictEqual(handled, ["snap-1"])
      const dead = yield* receiveMessages(harness.stack.queues.reporter?.deadLetterUrl ?? "")
      const reasons = dead.map((message) => message.MessageAttributes?.[DLQ_REASON_ATTRIBUTE]?.StringValue ?? "").sort()
      assert.strictEqual(reasons.length, 3)
      assert.match(reasons[0] ?? "", /^malformed event: body is not JSON/)
      assert.match(reasons[1] ?? "", /^unknown event type: source "aws.backup", detail-type "Backup Vault State Change"/)
      assert.match(reasons[2] ?? "", /^unsupported schema version 7 of "Restore Completed"/)
      assert.includeMembers(dead.map((message) => message.Body ?? ""), bad)
      assert.deepStrictEqual(yield* receiveMessages(queueUrl), [])
    }).pipe(Effect.scoped, Effect.provide(layers()))
  )

  it.live("leaves a message whose handler failed on the queue to be delivered again", () =>
    Effect.gen(function* () {
      const publisher = yield* Publisher
      yield* publisher.publish(RestoreCompleted, { ...restoreDetail, snapshotId: "snap-retry" })
      let calls = 0
      const subscriptions = [
        subscribe(RestoreCompleted, () =>
          Effect.suspend(() => {
            calls += 1
            return calls === 1 ? Effect.fail("transient") : Effect.void
          })
        )
      ]
      for (let round = 0; round < 20 && calls < 2; round += 1) {
        yield* pollOnce(subscriptions, { service: "reporter", waitTimeSeconds: 1 })
      }
      assert.strictEqual(calls, 2)
    }).pipe(Effect.scoped, Effect.provide(layers()))
  )

  it.live("sends the message of a step given up after its last attempt to the DLQ with the give-up reason, and drops the copy of a worker whose step was taken over", () =>
    Effect.gen(function* () {
      // Prepare: one event whose step was given up, one whose worker lost its claim
      const publisher = yield* Publisher
      const queueUrl = harness.stack.queues.reporter?.url ?? ""
      yield* publisher.publish(RestoreCompleted, { ...restoreDetail, snapshotId: "snap-gave-up" })
      yield* publisher.publish(RestoreCompleted, { ...restoreDetail, snapshotId: "snap-taken-over" })
      const arn = restoreDetail.correlationId
      const subscriptions = [
        subscribe(RestoreCompleted, (event): Effect.Effect<void, StepGaveUp | LeaseLost> =>
          event.detail.snapshotId === "snap-gave-up"
            ? Effect.fail(new StepGaveUp({ recoveryPointArn: arn, action: "restore:volume", reason: "gave up after 5 attempts: the worker died" }))
            : Effect.fail(new LeaseLost({ recoveryPointArn: arn, action: "restore:volume" }))
        )
      ]
      // Act
      let received = 0
      for (let round = 0; round < 10 && received < 2; round += 1) {
        received += yield* pollOnce(subscriptions, { service: "reporter", waitTimeSeconds: 1 })
      }
      // Assess: the given-up one dead-lettered with its reason; neither left on the queue
      assert.strictEqual(received, 2)
      const dead = yield* receiveMessages(harness.stack.queues.reporter?.deadLetterUrl ?? "")
      assert.strictEqual(dead.length, 1)
      assert.include(dead[0]?.Body ?? "", "snap-gave-up")
      assert.strictEqual(dead[0]?.MessageAttributes?.[DLQ_REASON_ATTRIBUTE]?.StringValue, `restore:volume of ${arn}: gave up after 5 attempts: the worker died`)
      assert.strictEqual(yield* messagesIn(queueUrl), 0)
    }).pipe(Effect.scoped, Effect.provide(layers()))
  )

  it.live("sends a message whose handler rejects it to the DLQ with that reason at once, and still handles the next one", () =>
    Effect.gen(function* () {
      // Prepare: an event the handler can never act on, then one it can
      const publisher = yield* Publisher
      const queueUrl = harness.stack.queues.reporter?.url ?? ""
      const reason = 'restore of "snap-rejected" names no volume to archive'
      yield* publisher.publish(RestoreCompleted, { ...restoreDetail, snapshotId: "snap-rejected" })
      yield* publisher.publish(RestoreCompleted, { ...restoreDetail, snapshotId: "snap-after-rejected" })
      const { seen, subscriptions } = rejectingHandler("snap-rejected", reason)
      // Act: one message per receive until both came
      let received = 0
      for (let round = 0; round < 10 && received < 2; round += 1) {
        received += yield* pollOnce(subscriptions, { service: "reporter", waitTimeSeconds: 1 })
      }
      // Assess: handled once, dead-lettered with the handler's reason and the service, gone from the queue
      assert.strictEqual(received, 2)
      assert.strictEqual(seen.rejections, 1)
      assert.deepStrictEqual(seen.handled, ["snap-after-rejected"])
      const dead = yield* receiveMessages(harness.stack.queues.reporter?.deadLetterUrl ?? "")
      assert.strictEqual(dead.length, 1)
      assert.include(dead[0]?.Body ?? "", "snap-rejected")
      assert.strictEqual(dead[0]?.MessageAttributes?.[DLQ_REASON_ATTRIBUTE]?.StringValue, reason)
      assert.strictEqual(dead[0]?.MessageAttributes?.[DLQ_SERVICE_ATTRIBUTE]?.StringValue, "reporter")
      assert.strictEqual(yield* messagesIn(queueUrl), 0)
    }).pipe(Effect.scoped, Effect.provide(layers()))
  )

  it.live("as a Lambda handler, dead-letters a rejected message with its reason and reports no batch item failure for it", () =>
    Effect.gen(function* () {
      // Prepare: a rejected event and a good one, received as Lambda's poller would
      const publisher = yield* Publisher
      const queueUrl = harness.stack.queues.reporter?.url ?? ""
      const reason = 'restore of "snap-lambda-rejected" names no volume to archive'
      yield* publisher.publish(RestoreCompleted, { ...restoreDetail, snapshotId: "snap-lambda-rejected" })
      yield* publisher.publish(RestoreCompleted, { ...restoreDetail, snapshotId: "snap-lambda-accepted" })
      const { received, event } = yield* receiveAsLambdaEvent(queueUrl, 2)
      const { seen, subscriptions } = rejectingHandler("snap-lambda-rejected", reason)
      const handler = makeLambdaHandler(subscriptions, { service: "reporter", concurrency: 2 }, layers())
      // Act
      const response = yield* Effect.promise(() => handler(event))
      // Assess
      assert.strictEqual(received.length, 2)
      assert.deepStrictEqual(response.batchItemFailures, [])
      assert.strictEqual(seen.rejections, 1)
      assert.deepStrictEqual(seen.handled, ["snap-lambda-accepted"])
      const dead = yield* receiveMessages(harness.stack.queues.reporter?.deadLetterUrl ?? "")
      assert.strictEqual(dead.length, 1)
      assert.include(dead[0]?.Body ?? "", "snap-lambda-rejected")
      assert.strictEqual(dead[0]?.MessageAttributes?.[DLQ_REASON_ATTRIBUTE]?.StringValue, reason)
      assert.strictEqual(dead[0]?.MessageAttributes?.[DLQ_SERVICE_ATTRIBUTE]?.StringValue, "reporter")
      assert.strictEqual(yield* messagesIn(queueUrl), 0)
    }).pipe(Effect.scoped, Effect.provide(layers()))
  )

  it.live("as a Lambda handler, hands back only the message whose handler failed and dead-letters the malformed one", () =>
    Effect.gen(function* () {
      // Prepare: a good event, one whose handler fails, and a malformed body, received as Lambda's poller would
      const sqs = yield* Sqs
      const publisher = yield* Publisher
      const queueUrl = harness.stack.queues.reporter?.url ?? ""
      yield* publisher.publish(RestoreCompleted, { ...restoreDetail, snapshotId: "snap-lambda-ok" })
      yield* publisher.publish(RestoreCompleted, { ...restoreDetail, snapshotId: "snap-lambda-fails" })
      yield* awsCall("sqs:SendMessage", (abortSignal) => sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: "not json" }), { abortSignal }))
      const received: Array<Message> = []
      for (let round = 0; round < 10 && received.length < 3; round += 1) {
        const batch = yield* awsCall("sqs:ReceiveMessage", (abortSignal) =>
          sqs.send(
            new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1, MessageSystemAttributeNames: ["ApproximateReceiveCount"] }),
            { abortSignal }
          )
        )
        received.push(...(batch.Messages ?? []))
      }
      const event = {
        Records: received.map((message) => ({
          messageId: message.MessageId ?? "",
          receiptHandle: message.ReceiptHandle ?? "",
          body: message.Body ?? "",
          attributes: { ApproximateReceiveCount: message.Attributes?.ApproximateReceiveCount ?? "1" }
        }))
      }
      const handled: Array<string> = []
      const handler = makeLambdaHandler(
        [
          subscribe(RestoreCompleted, (restored) =>
            restored.detail.snapshotId === "snap-lambda-fails" ? Effect.fail("downstream unavailable") : Effect.sync(() => handled.push(restored.detail.snapshotId))
          )
        ],
        { service: "reporter", concurrency: 3 },
        layers()
      )
      // Act
      const response = yield* Effect.promise(() => handler(event))
      // Assess
      const failing = received.find((message) => (message.Body ?? "").includes("snap-lambda-fails"))
      assert.strictEqual(received.length, 3)
      assert.deepStrictEqual(handled, ["snap-lambda-ok"])
      assert.deepStrictEqual(response.batchItemFailures, [{ itemIdentifier: failing?.MessageId ?? "" }])
      const dead = yield* receiveMessages(harness.stack.queues.reporter?.deadLetterUrl ?? "")
      assert.deepStrictEqual(dead.map((message) => message.Body), ["not json"])
    }).pipe(Effect.scoped, Effect.provide(layers()))
  )

  it.live("defers a duplicate of a step another worker is running until that worker's lease would lapse, as a fresh message", () =>
    Effect.gen(function* () {
      // Prepare: the step is busy elsewhere for two more seconds on the first delivery, done on the next
      const publisher = yield* Publisher
      const queueUrl = harness.stack.queues.reporter?.url ?? ""
      yield* publisher.publish(RestoreCompleted, { ...restoreDetail, snapshotId: "snap-busy" })
      const deliveries: Array<number> = []
      const subscriptions = [
        subscribe(RestoreCompleted, (event) =>
          Effect.suspend(() => {
            // Messages other tests left behind are simply handled
            if (event.detail.snapshotId !== "snap-busy") return Effect.void
            deliveries.push(Date.now())
            return deliveries.length === 1
              ? Effect.fail(new StepBusy({ recoveryPointArn: event.detail.correlationId, action: "archive:volume", leaseUntil: Date.now() + 2_000 }))
              : Effect.void
          })
        )
      ]
      // Act: the first delivery
      for (let round = 0; round < 10 && deliveries.length < 1; round += 1) yield* pollOnce(subscriptions, { service: "reporter", waitTimeSeconds: 1 })
      const delayedAfterFirst = yield* delayedMessagesIn(queueUrl)
      // Act: poll until it comes back
      for (let round = 0; round < 30 && deliveries.length < 2; round += 1) yield* pollOnce(subscriptions, { service: "reporter", waitTimeSeconds: 1 })
      // Assess: back after the lease plus a margin, never in the DLQ, and gone once handled
      assert.strictEqual(delayedAfterFirst, 1)
      assert.strictEqual(deliveries.length, 2)
      assert.isAtLeast((deliveries[1] ?? 0) - (deliveries[0] ?? 0), 6_000)
      assert.deepStrictEqual(yield* receiveMessages(harness.stack.queues.reporter?.deadLetterUrl ?? ""), [])
      assert.strictEqual(yield* messagesIn(queueUrl), 0)
    }).pipe(Effect.scoped, Effect.provide(layers()))
  )

  it.live("keeps taking messages on its other slots while one handler runs long", () =>
    Effect.gen(function* () {
      // Prepare: a slow message first, then three quick ones
      const publisher = yield* Publisher
      yield* publisher.publish(RestoreCompleted, { ...restoreDetail, snapshotId: "snap-slow" })
      for (const name of ["snap-quick-1", "snap-quick-2", "snap-quick-3"]) yield* publisher.publish(RestoreCompleted, { ...restoreDetail, snapshotId: name })
      const quick: Array<string> = []
      const slowDone = yield* Deferred.make<void>()
      const subscriptions = [
        subscribe(RestoreCompleted, (event) =>
          event.detail.snapshotId === "snap-slow" ? Deferred.await(slowDone) : Effect.sync(() => quick.push(event.detail.snapshotId))
        )
      ]
      // Act: two slots
      const consumer = yield* Effect.fork(runConsumer(subscriptions, { service: "reporter", concurrency: 2, waitTimeSeconds: 1 }))
      const allQuick = Effect.suspend(() => (quick.length === 3 ? Effect.void : Effect.fail("waiting"))).pipe(
        Effect.retry({ schedule: Schedule.spaced("200 millis"), times: 100 })
      )
      yield* allQuick
      // Assess: all quick ones were handled while the slow one still held its slot
      assert.deepStrictEqual([...quick].sort(), ["snap-quick-1", "snap-quick-2", "snap-quick-3"])
      assert.isFalse(yield* Deferred.isDone(slowDone))
      yield* Deferred.succeed(slowDone, undefined)
      yield* Fiber.interrupt(consumer)
    }).pipe(Effect.scoped, Effect.provide(layers()))
  )
})
