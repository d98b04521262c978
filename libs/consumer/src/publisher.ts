import { PutEventsCommand } from "@aws-sdk/client-eventbridge"
import { Context, Effect, Layer, Schema } from "effect"
import { AwsError, EventBridge, awsCall } from "@backup-actions/aws"
import type { Contract, EventDecodeError } from "@backup-actions/contracts"
import { ServiceSettings } from "@backup-actions/config"

/** EventBridge accepted the call but refused the entry: the event was not published. */
export class PublishFailed extends Schema.TaggedError<PublishFailed>()("PublishFailed", {
  detailType: Schema.String,
  errorCode: Schema.String,
  errorMessage: Schema.String
}) {}

export interface PublisherShape {
  readonly publish: <S extends string, D extends string, T>(
    contract: Contract<S, D, T>,
    detail: T,
    resources?: ReadonlyArray<string>
  ) => Effect.Effect<void, PublishFailed | EventDecodeError | AwsError>
}

/** Publishes owned events on the bus; a refused entry (FailedEntryCount > 0) is a failure, never silent. */
export class Publisher extends Context.Tag("backup-actions/Publisher")<Publisher, PublisherShape>() {
  static readonly Live = Layer.effect(
    Publisher,
    Effect.gen(function* () {
      const events = yield* EventBridge
      const { busName } = yield* ServiceSettings
      return {
        publish: (contract, detail, resources = []) =>
          Effect.gen(function* () {
            const encoded = yield* contract.encodeDetail(detail)
            const result = yield* awsCall("events:PutEvents", (abortSignal) =>
              events.send(
                new PutEventsCommand({
                  Entries: [
                    {
                      EventBusName: busName,
                      Source: contract.source,
                      DetailType: contract.detailType,
                      Detail: JSON.stringify(encoded),
                      Resources: [...resources]
                    }
                  ]
                }),
                { abortSignal }
              )
            )
            if ((result.FailedEntryCount ?? 0) > 0) {
              const entry = result.Entries?.[0]
              return yield* new PublishFailed({
                detailType: contract.detailType,
                errorCode: entry?.ErrorCode ?? "Unknown",
                errorMessage: entry?.ErrorMessage ?? "EventBridge refused the entry"
              })
            }
            yield* Effect.logInfo(`published ${contract.detailType}`)
          })
      }
    })
  )
}
