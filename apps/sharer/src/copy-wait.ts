import { Duration, Schedule, Schema } from "effect"

/** The copy is not complete yet; the waiter asks again later. */
export class CopyPending extends Schema.TaggedError<CopyPending>()("CopyPending", { snapshotId: Schema.String, progress: Schema.String }) {}

/** The copy ended in the error state. */
export class CopyFailed extends Schema.TaggedError<CopyFailed>()("CopyFailed", { snapshotId: Schema.String, message: Schema.String }) {}

/**
 * How the copy is waited for: 5 s, growing by half each time, jittered, at most 2 minutes
 * apart, for at most 24 hours. The emulator completes a copy at once; AWS takes minutes to
 * hours depending on size and distance.
 */
export const copyWaitSchedule = Schedule.exponential(Duration.seconds(5), 1.5).pipe(
  Schedule.jittered,
  Schedule.modifyDelay((delay) => Duration.min(delay, Duration.minutes(2))),
  Schedule.upTo(Duration.hours(24))
)
