import { Effect } from "effect"
import type { AwsError } from "./errors"

/**
 * For a describe call whose not-found answer means "there is none": the answer, or undefined.
 * Every other failure stays an AwsError, so a throttled or refused call is never taken for a
 * missing resource.
 */
export const undefinedWhenNotFound = <A, R>(effect: Effect.Effect<A, AwsError, R>): Effect.Effect<A | undefined, AwsError, R> =>
  Effect.catchIf(
    effect,
    (error) => error.kind === "not-found",
    () => Effect.succeed(undefined)
  )
