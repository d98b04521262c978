import { Duration, Effect, Option, Schedule } from "effect"
import type { AwsError } from "@backup-actions/aws"
import { Ledger, type LeaseLost, type StepBusy, type StepKey, type StepRecord } from "./ledger"

/** How a step ended: its outcome is kept in the ledger either way. */
export type StepResult<A> =
  | { readonly _tag: "Succeeded"; readonly outcome: A }
  | { readonly _tag: "Failed"; readonly reason: string; readonly outcome: A }

export const succeeded = <A>(outcome: A): StepResult<A> => ({ _tag: "Succeeded", outcome })
export const failed = <A>(reason: string, outcome: A): StepResult<A> => ({ _tag: "Failed", reason, outcome })

/**
 * Runs a step under the ledger: claims it (a finished step returns None and does nothing),
 * keeps the lease alive while the work runs, and records how it ended.
 */
export const runStep = <A extends Record<string, unknown>, E, R>(
  step: StepKey,
  options: { readonly lease: Duration.DurationInput },
  work: (record: StepRecord) => Effect.Effect<StepResult<A>, E, R>
): Effect.Effect<Option.Option<StepResult<A>>, E | StepBusy | LeaseLost | AwsError, R | Ledger> =>
  Effect.gen(function* () {
    const ledger = yield* Ledger
    const leaseMs = Duration.toMillis(Duration.decode(options.lease))
    const claimed = yield* ledger.claim(step, leaseMs).pipe(
      Effect.map(Option.some),
      Effect.catchTag("StepAlreadyDone", () =>
        Effect.logInfo(`${step.action} of ${step.recoveryPointArn} already finished; nothing to do`).pipe(Effect.as(Option.none<StepRecord>()))
      )
    )
    if (Option.isNone(claimed)) return Option.none()
    if (claimed.value.attempts > 1) {
      yield* Effect.logInfo(`${step.action} of ${step.recoveryPointArn}: attempt ${claimed.value.attempts}`)
    }
    const renewal = ledger.renew(step, leaseMs).pipe(
      Effect.catchTag("AwsError", (error) => Effect.logWarning(`lease renewal failed: ${error.message}`)),
      Effect.repeat(Schedule.spaced(Duration.millis(Math.max(1_000, leaseMs / 3)))),
      Effect.delay(Duration.millis(Math.max(1_000, leaseMs / 3)))
    )
    const result = yield* Effect.raceFirst(work(claimed.value), Effect.andThen(renewal, Effect.never))
    if (result._tag === "Succeeded") yield* ledger.succeed(step, result.outcome)
    else yield* ledger.fail(step, result.reason, result.outcome)
    return Option.some(result)
  })
