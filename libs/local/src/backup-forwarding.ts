import { PutEventsCommand, type PutEventsRequestEntry } from "@aws-sdk/client-eventbridge"
import { DeleteMessageBatchCommand, ReceiveMessageCommand, type Message } from "@aws-sdk/client-sqs"
import { Duration, Effect, Either, Fiber, Schema } from "effect"
import { type AwsError, EventBridge, Sqs, awsCall } from "@backup-actions/aws"
import { emulatorClients } from "./emulator"

/**
 * The local leg that stands in for the rule forwarding AWS Backup events from the default bus
 * to the project's bus. The emulator drops `resources[]` (and the event's time) from an event
 * that a rule sends to another bus, and AWS Backup names the recovery point only there; so
 * locally the default bus's rule delivers the events to a queue, and this loop puts each one on
 * the project's bus again as AWS would have forwarded it: same source, detail-type, detail,
 * resources and time. The CDK stacks keep the real bus-to-bus rule.
 */
export interface BackupForwardingLeg {
  /** Where the default bus's rule delivers AWS Backup events. */
  readonly queueUrl: string
  /** The project's bus, where the services' rules and the archive see them. */
  readonly busName: string
}

/** An event as the default bus's rule delivered it to the queue: what the bus needs again. */
const DeliveredEvent = Schema.parseJson(
  Schema.Struct({
    source: Schema.String,
    "detail-type": Schema.String,
    time: Schema.optional(Schema.String),
    resources: Schema.Array(Schema.String),
    detail: Schema.Unknown
  })
)
const decodeDelivered = Schema.decodeUnknownEither(DeliveredEvent, { onExcessProperty: "ignore" })

/** The PutEvents entry that puts a delivered event on the bus as it was, or undefined for a body that is not one. */
const entryFor = (busName: string, message: Message): PutEventsRequestEntry | undefined => {
  const decoded = decodeDelivered(message.Body ?? "")
  if (Either.isLeft(decoded)) return undefined
  const event = decoded.right
  const time = event.time === undefined ? undefined : new Date(event.time)
  return {
    EventBusName: busName,
    Source: event.source,
    DetailType: event["detail-type"],
    Detail: JSON.stringify(event.detail),
    Resources: [...event.resources],
    ...(time === undefined || Number.isNaN(time.getTime()) ? {} : { Time: time })
  }
}

/**
 * Takes what the queue holds (up to 10, waiting up to `waitSeconds` for the first), puts each
 * event on the bus and deletes the messages the bus took; returns how many it forwarded. A
 * message the bus refused comes back after its visibility timeout; one that is not an event
 * moves to the leg's DLQ after as many receives as a service's message would.
 */
export const forwardBackupEventsOnce = (leg: BackupForwardingLeg, waitSeconds = 5) =>
  Effect.gen(function* () {
    const sqs = yield* Sqs
    const events = yield* EventBridge
    const received = yield* awsCall("sqs:ReceiveMessage", (abortSignal) =>
      sqs.send(new ReceiveMessageCommand({ QueueUrl: leg.queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: waitSeconds }), { abortSignal })
    )
    const messages = received.Messages ?? []
    const forwardable = messages.flatMap((message) => {
      const entry = entryFor(leg.busName, message)
      return entry === undefined ? [] : [{ message, entry }]
    })
    if (forwardable.length < messages.length) {
      yield* Effect.logWarning(`${messages.length - forwardable.length} message(s) in ${leg.queueUrl} are not events; left for its DLQ`)
    }
    if (forwardable.length === 0) return 0
    const put = yield* awsCall("events:PutEvents", (abortSignal) =>
      events.send(new PutEventsCommand({ Entries: forwardable.map(({ entry }) => entry) }), { abortSignal })
    )
    const taken = forwardable.filter((_, index) => put.Entries?.[index]?.EventId !== undefined)
    if (taken.length < forwardable.length) {
      const refusal = put.Entries?.find((entry) => entry.EventId === undefined)?.ErrorMessage ?? "no reason given"
      yield* Effect.logWarning(`the bus refused ${forwardable.length - taken.length} forwarded event(s), which come back later: ${refusal}`)
    }
    if (taken.length > 0) {
      yield* awsCall("sqs:DeleteMessageBatch", (abortSignal) =>
        sqs.send(
          new DeleteMessageBatchCommand({
            QueueUrl: leg.queueUrl,
            Entries: taken.map(({ message }, index) => ({ Id: String(index), ReceiptHandle: message.ReceiptHandle }))
          }),
          { abortSignal }
        )
      )
    }
    return taken.length
  })

/** Forwards until interrupted; an AWS error is logged and the loop goes on a second later. */
export const forwardBackupEvents = (leg: BackupForwardingLeg): Effect.Effect<never, never, Sqs | EventBridge> =>
  forwardBackupEventsOnce(leg).pipe(
    Effect.catchAll((error: AwsError) =>
      Effect.logWarning(`forwarding AWS Backup events to ${leg.busName}: ${error.message}`).pipe(Effect.zipRight(Effect.sleep(Duration.seconds(1))))
    ),
    Effect.forever
  )

/** The running leg of a local stack. */
export interface BackupForwarding {
  /** Stops the loop (an outstanding receive is aborted); call it before the emulator stops. */
  readonly stop: () => Promise<void>
}

/** Runs the forwarding loop against an emulator in the background of this process. */
export const startBackupForwarding = (endpoint: string, leg: BackupForwardingLeg): BackupForwarding => {
  const fiber = Effect.runFork(Effect.scoped(forwardBackupEvents(leg).pipe(Effect.provide(emulatorClients(endpoint)))))
  return { stop: () => Effect.runPromise(Fiber.interrupt(fiber)).then(() => undefined) }
}
