import { Duration, Effect, Schedule, Schema } from "effect"
import type { AwsError } from "@backup-actions/aws"

/** The copy is not complete yet; the waiter asks again later. */
export class CopyPending extends Schema.TaggedError<CopyPending>()("CopyPending", { snapshotId: Schema.String, progress: Schema.String }) {}

/** The copy ended in the error state. */
export class CopyFailed extends Schema.TaggedError<CopyFailed>()("CopyFailed", { snapshotId: Schema.String, message: Schema.String }) {}

/**
 * How the copy is waited for: 5 s, growing by half each time, jittered, at most 2 minutes
 * apart, for at most 24 hours. A copy takes minutes to hours, depending on its size and the
 * distance between the regions.
 */
export const copyWaitSchedule = Schedule.exponential(Duration.seconds(5), 1.5).pipe(
  Schedule.jittered,
  Schedule.modifyDelay((delay) => Duration.min(delay, Duration.minutes(2))),
  Schedule.upTo(Duration.hours(24))
)

/**
 * Looks at a copy on copyWaitSchedule until `settled` finds it done: the one waiting loop of
 * EBS and DB snapshot copies. `settled` reads one answer as the finished copy, CopyPending (look
 * again later) or CopyFailed; a copy that can no longer be found has failed.
 */
export const waitUntilCopied = <S, R>(
  copyId: string,
  describe: Effect.Effect<S | undefined, AwsError, R>,
  settled: (copy: S) => Effect.Effect<S, CopyPending | CopyFailed>
) =>
  describe.pipe(
    Effect.flatMap((copy) => (copy === undefined ? new CopyFailed({ snapshotId: copyId, message: "the copy disappeared while it was being made" }) : settled(copy))),
    Effect.retry({ schedule: copyWaitSchedule, while: (error) => error._tag === "CopyPending" })
  )
