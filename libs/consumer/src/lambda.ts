import type { Message } from "@aws-sdk/client-sqs"
import { Effect, type Layer, ManagedRuntime } from "effect"
import type { Sqs } from "@backup-actions/aws"
import type { ServiceSettings } from "@backup-actions/config"
import type { Subscription } from "@backup-actions/contracts"
import { handleMessage, type ConsumerOptions } from "./consumer"
import { loggerFromEnv } from "./service-main"

/** The part of Lambda's SQS event that the handler reads. */
export interface SqsLambdaEvent {
  readonly Records: ReadonlyArray<{
    readonly messageId: string
    readonly receiptHandle: string
    readonly body: string
    readonly attributes?: { readonly ApproximateReceiveCount?: string }
  }>
}

/** With ReportBatchItemFailures on the event source mapping, only these messages come back. */
export interface SqsBatchResponse {
  readonly batchItemFailures: ReadonlyArray<{ readonly itemIdentifier: string }>
}

const toMessage = (record: SqsLambdaEvent["Records"][number]): Message => ({
  MessageId: record.messageId,
  ReceiptHandle: record.receiptHandle,
  Body: record.body,
  Attributes: { ApproximateReceiveCount: record.attributes?.ApproximateReceiveCount ?? "1" }
})

/**
 * A Lambda handler for a service's queue: the same subscriptions, decoding, DLQ and
 * heartbeat as the polling consumer. A dead-lettered message (undecodable, or rejected by its
 * handler) counts as handled, so Lambda does not deliver it again. The layer (and its AWS
 * clients) is built on the first invocation and kept for the warm container's life, never at
 * import time.
 */
export const makeLambdaHandler = <R, E, LE>(
  subscriptions: ReadonlyArray<Subscription<R, E>>,
  options: ConsumerOptions,
  layer: Layer.Layer<NoInfer<R> | Sqs | ServiceSettings, LE>
): ((event: SqsLambdaEvent) => Promise<SqsBatchResponse>) => {
  let runtime: ManagedRuntime.ManagedRuntime<R | Sqs | ServiceSettings, LE> | undefined
  return async (event) => {
    runtime ??= ManagedRuntime.make(layer)
    const done = await runtime.runPromise(
      Effect.forEach(event.Records, (record) => handleMessage(toMessage(record), subscriptions, options).pipe(Effect.map((handled) => ({ record, handled }))), {
        concurrency: options.concurrency ?? 1
      }).pipe(Effect.provide(loggerFromEnv()))
    )
    return { batchItemFailures: done.filter((entry) => !entry.handled).map((entry) => ({ itemIdentifier: entry.record.messageId })) }
  }
}
