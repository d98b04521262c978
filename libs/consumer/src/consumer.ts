import {
  ChangeMessageVisibilityCommand,
  DeleteMessageCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  type Message
} from "@aws-sdk/client-sqs"
import { Cause, Clock, Duration, Effect, Fiber, Option, Schedule } from "effect"
import { AwsError, Sqs, awsCall } from "@backup-actions/aws"
import { type Subscription, describeDecodeFailure, route } from "@backup-actions/contracts"
import { ServiceSettings } from "@backup-actions/config"
import { LeaseLost, StepBusy, StepGaveUp } from "@backup-actions/ledger"
import { UnprocessableEvent } from "./unprocessable"

export interface ConsumerOptions {
  /** The service's name, used in logs and on dead-lettered messages. */
  readonly service: string
  /** Messages handled at once. */
  readonly concurrency?: number
  /** SQS long-poll wait. */
  readonly waitTimeSeconds?: number
  /** How long a message stays hidden; it is extended while its handler runs. */
  readonly visibilityTimeoutSeconds?: number
}

/** Message attribute names on messages this runtime moves to a DLQ. */
export const DLQ_REASON_ATTRIBUTE = "backup-actions-reason"
export const DLQ_SERVICE_ATTRIBUTE = "backup-actions-service"

const deleteMessage = (queueUrl: string, message: Message) =>
  Effect.flatMap(Sqs, (sqs) =>
    awsCall("sqs:DeleteMessage", (abortSignal) =>
      sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: message.ReceiptHandle }), { abortSignal })
    )
  )

const changeVisibility = (queueUrl: string, message: Message, seconds: number) =>
  Effect.flatMap(Sqs, (sqs) =>
    awsCall("sqs:ChangeMessageVisibility", (abortSignal) =>
      sqs.send(
        new ChangeMessageVisibilityCommand({ QueueUrl: queueUrl, ReceiptHandle: message.ReceiptHandle, VisibilityTimeout: seconds }),
        { abortSignal }
      )
    )
  )

/** Moves a message that can never be handled to the DLQ with its reason, then removes it from the queue. */
const deadLetter = (service: string, message: Message, reason: string) =>
  Effect.gen(function* () {
    const sqs = yield* Sqs
    const settings = yield* ServiceSettings
    yield* awsCall("sqs:SendMessage", (abortSignal) =>
      sqs.send(
        new SendMessageCommand({
          QueueUrl: settings.deadLetterQueueUrl,
          MessageBody: message.Body ?? "",
          MessageAttributes: {
            [DLQ_REASON_ATTRIBUTE]: { DataType: "String", StringValue: reason.slice(0, 4_000) },
            [DLQ_SERVICE_ATTRIBUTE]: { DataType: "String", StringValue: service }
          }
        }),
        { abortSignal }
      )
    )
    yield* deleteMessage(settings.queueUrl, message)
    yield* Effect.logWarning(`moved message ${message.MessageId ?? "?"} to the DLQ: ${reason}`)
  })

/** The longest delay SQS gives a message. */
const MAX_DELAY_SECONDS = 900

/**
 * Puts a fresh copy of the message back on the queue, delayed, and removes this one. The copy
 * starts with a receive count of zero, so waiting on another worker's step never walks a
 * duplicate towards the DLQ, however long that step runs.
 */
const deferMessage = (message: Message, delaySeconds: number) =>
  Effect.gen(function* () {
    const sqs = yield* Sqs
    const settings = yield* ServiceSettings
    yield* awsCall("sqs:SendMessage", (abortSignal) =>
      sqs.send(new SendMessageCommand({ QueueUrl: settings.queueUrl, MessageBody: message.Body ?? "", DelaySeconds: delaySeconds }), { abortSignal })
    )
    yield* deleteMessage(settings.queueUrl, message)
  })

/** Keeps the message hidden while its handler runs, however long that takes. */
const heartbeat = (queueUrl: string, message: Message, visibilitySeconds: number) =>
  changeVisibility(queueUrl, message, visibilitySeconds).pipe(
    Effect.catchAll((error) => Effect.logWarning(`could not extend visibility: ${error.message}`)),
    Effect.repeat(Schedule.spaced(Duration.seconds(Math.max(1, Math.floor(visibilitySeconds / 3))))),
    Effect.delay(Duration.seconds(Math.max(1, Math.floor(visibilitySeconds / 3))))
  )

/** One line for a handler's failure: the error's tag and message, or the defect. */
const describeCause = <E>(cause: Cause.Cause<E>): string => {
  const squashed = Cause.squash(cause)
  if (typeof squashed === "object" && squashed !== null) {
    const tag = "_tag" in squashed ? String(squashed._tag) : "Error"
    const message = "message" in squashed ? String(squashed.message) : ""
    return `${tag}: ${message}`.slice(0, 1_000)
  }
  return String(squashed).slice(0, 1_000)
}

/** The step another worker is running, if that is why the handler failed. */
const busyStepOf = <E>(cause: Cause.Cause<E>): Option.Option<StepBusy> =>
  Option.filter(Cause.failureOption(cause), (error): error is E & StepBusy => error instanceof StepBusy)

/** Why the event can never be acted on, if that is how the handler failed: it rejected the event, or its step was given up. */
const rejectionOf = <E>(cause: Cause.Cause<E>): Option.Option<string> =>
  Option.flatMap(Cause.failureOption(cause), (error) =>
    error instanceof UnprocessableEvent
      ? Option.some(error.reason)
      : error instanceof StepGaveUp
        ? Option.some(`${error.action} of ${error.recoveryPointArn}: ${error.reason}`)
        : Option.none()
  )

/** The step another worker took over from this one, if that is why the handler failed. */
const lostStepOf = <E>(cause: Cause.Cause<E>): Option.Option<LeaseLost> =>
  Option.filter(Cause.failureOption(cause), (error): error is E & LeaseLost => error instanceof LeaseLost)

/**
 * Handles one message: decode it (a body that can't be decoded goes to the DLQ with the
 * reason), run its handler while extending its visibility, delete it on success. A handler
 * that rejects its event (`UnprocessableEvent`) sends it to the DLQ with its reason at once,
 * since a retry would fail the same way; so does a step given up after its last attempt. A
 * worker whose step was taken over drops its copy. A step that another worker is running defers the
 * message until that worker's lease would lapse. Any other failure leaves the message to come back;
 * after the redrive limit SQS moves it to the DLQ.
 * Returns whether the message is done with (handled or dead-lettered).
 */
export const handleMessage = <R, E>(
  message: Message,
  subscriptions: ReadonlyArray<Subscription<R, E>>,
  options: ConsumerOptions
) =>
  Effect.gen(function* () {
    const settings = yield* ServiceSettings
    const visibility = options.visibilityTimeoutSeconds ?? 120
    const routed = yield* Effect.either(route(message.Body ?? "", subscriptions))
    if (routed._tag === "Left") {
      yield* deadLetter(options.service, message, describeDecodeFailure(routed.left))
      return true
    }
    const beat = yield* Effect.fork(heartbeat(settings.queueUrl, message, visibility))
    const outcome = yield* Effect.exit(routed.right)
    yield* Fiber.interrupt(beat)
    if (outcome._tag === "Success") {
      yield* deleteMessage(settings.queueUrl, message)
      return true
    }
    const rejection = rejectionOf(outcome.cause)
    if (Option.isSome(rejection)) {
      yield* deadLetter(options.service, message, rejection.value)
      return true
    }
    const lost = lostStepOf(outcome.cause)
    if (Option.isSome(lost)) {
      // Another worker took the step over (this one stalled past its lease): that worker holds
      // its own copy of the event and announces the outcome. This one changed nothing.
      yield* deleteMessage(settings.queueUrl, message)
      yield* Effect.logWarning(`${lost.value.action} of ${lost.value.recoveryPointArn} was taken over by another worker; this one stopped and published nothing`)
      return true
    }
    const busy = busyStepOf(outcome.cause)
    if (Option.isSome(busy)) {
      // A duplicate (or replay) of a step another worker is running. Come back when its lease
      // would lapse: by then the step is done (and this copy a no-op), or its worker died and
      // this copy takes the step over.
      const now = yield* Clock.currentTimeMillis
      const delay = Math.min(MAX_DELAY_SECONDS, Math.max(1, Math.ceil((busy.value.leaseUntil - now) / 1000) + 5))
      yield* deferMessage(message, delay)
      yield* Effect.logInfo(`${busy.value.action} of ${busy.value.recoveryPointArn} is running elsewhere; this message comes back in ${delay} s`)
      return true
    }
    const receives = Number(message.Attributes?.ApproximateReceiveCount ?? "1")
    yield* Effect.logError(`handler failed (receive ${receives}); the message will come back: ${describeCause(outcome.cause)}`)
    // Back off before the next delivery instead of waiting out the whole visibility timeout.
    yield* changeVisibility(settings.queueUrl, message, Math.min(300, 5 * 2 ** Math.min(receives - 1, 6))).pipe(
      Effect.catchAll(() => Effect.void)
    )
    return false
  }).pipe(Effect.annotateLogs({ service: options.service, messageId: message.MessageId ?? "?" }))

/** Receives one batch and handles it. Returns how many messages it got. */
export const pollOnce = <R, E>(subscriptions: ReadonlyArray<Subscription<R, E>>, options: ConsumerOptions) =>
  Effect.gen(function* () {
    const sqs = yield* Sqs
    const settings = yield* ServiceSettings
    const wait = options.waitTimeSeconds ?? 10
    const received = yield* awsCall(
      "sqs:ReceiveMessage",
      (abortSignal) =>
        sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: settings.queueUrl,
            MaxNumberOfMessages: Math.min(10, options.concurrency ?? 1),
            WaitTimeSeconds: wait,
            VisibilityTimeout: options.visibilityTimeoutSeconds ?? 120,
            MessageSystemAttributeNames: ["ApproximateReceiveCount"]
          }),
          { abortSignal }
        ),
      { timeout: Duration.seconds(wait + 10) }
    )
    const messages = received.Messages ?? []
    yield* Effect.forEach(messages, (message) => handleMessage(message, subscriptions, options), {
      concurrency: options.concurrency ?? 1,
      discard: true
    })
    return messages.length
  })

/**
 * Polls the service's queue until interrupted, with `concurrency` independent pollers of one
 * message each: a slow message (an hours-long copy) holds one slot, never the others, and a
 * freed slot takes the next message at once. An AWS failure of a poll is logged and retried.
 */
export const runConsumer = <R, E>(subscriptions: ReadonlyArray<Subscription<R, E>>, options: ConsumerOptions) => {
  const poller = pollOnce(subscriptions, { ...options, concurrency: 1 }).pipe(
    Effect.catchTag("AwsError", (error: AwsError) =>
      Effect.logError(`polling failed: ${error.code}: ${error.message}`).pipe(Effect.zipRight(Effect.sleep(Duration.seconds(2))))
    ),
    Effect.forever
  )
  return Effect.all(Array.from({ length: Math.max(1, options.concurrency ?? 1) }, () => poller), { concurrency: "unbounded", discard: true }).pipe(
    Effect.annotateLogs({ service: options.service })
  )
}
