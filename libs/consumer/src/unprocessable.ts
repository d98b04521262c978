import { Effect, Schema } from "effect"
import { type EventOf, type RecoveryPointStateChange, recoveryPointArnOf } from "@backup-actions/contracts"

/**
 * A well-formed event that its handler can never act on (it names no recovery point, or lacks
 * a field its kind of event must carry). Retrying can't help, so the consumer sends the message
 * to the service's DLQ with this reason at once instead of letting it come back until the
 * redrive limit moves it there with none. Failures that belong to a recovery point's step
 * (an AWS error, a refused plan) go to the ledger and the outcome event instead.
 */
export class UnprocessableEvent extends Schema.TaggedError<UnprocessableEvent>()("UnprocessableEvent", {
  reason: Schema.String
}) {}

/**
 * The recovery-point ARN of an AWS Backup event, or its rejection: without one there is
 * nothing to act on and no ledger key to record a failed step under. Call it only once the
 * policy says the service acts on the event, so that events of no interest stay ignored.
 */
export const requireRecoveryPoint = (event: EventOf<typeof RecoveryPointStateChange>): Effect.Effect<string, UnprocessableEvent> => {
  const recoveryPointArn = recoveryPointArnOf(event)
  return recoveryPointArn === undefined
    ? Effect.fail(
        new UnprocessableEvent({
          reason: `"${event["detail-type"]}" event ${event.id} for ${event.detail.resourceArn} names no recovery point (resources[] is empty)`
        })
      )
    : Effect.succeed(recoveryPointArn)
}
