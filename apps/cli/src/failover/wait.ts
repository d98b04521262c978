import { Clock, Console, Duration, Effect, Schedule, Schema } from "effect"
import { OperationFailed } from "../errors"
import { Progress } from "../progress"
import { describeAge } from "./output"

/** The restored resource is not ready yet; the waiter asks again later. */
export class NotReadyYet extends Schema.TaggedError<NotReadyYet>()("NotReadyYet", { status: Schema.String }) {}

/**
 * How the new resource is waited for: 5 s, growing by half, jittered, at most a minute apart,
 * for at most three hours (a large DB instance takes tens of minutes).
 */
export const readySchedule = Schedule.exponential(Duration.seconds(5), 1.5).pipe(
  Schedule.jittered,
  Schedule.modifyDelay((delay) => Duration.min(delay, Duration.minutes(1))),
  Schedule.upTo(Duration.hours(3))
)

/** Asks again on the schedule until `check` stops failing with NotReadyYet; each answer shows as progress. */
export const waitUntilReady = <A, E, R>(what: string, check: Effect.Effect<A, NotReadyYet | E, R>) =>
  Effect.gen(function* () {
    const progress = yield* Progress
    const started = yield* Clock.currentTimeMillis
    return yield* check.pipe(
      Effect.tapError((error) =>
        error instanceof NotReadyYet && progress.enabled
          ? Effect.flatMap(Clock.currentTimeMillis, (now) => Console.error(`${what}: ${error.status} after ${describeAge(Math.round((now - started) / 1000))}`))
          : Effect.void
      ),
      Effect.retry({ schedule: readySchedule, while: (error) => error instanceof NotReadyYet }),
      Effect.catchIf(
        (error): error is NotReadyYet => error instanceof NotReadyYet,
        (error) => new OperationFailed({ message: `${what} is still ${error.status} after 3 hours; it was left as it is` })
      )
    )
  })
