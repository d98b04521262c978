import { Duration, Effect, Schedule } from "effect"
import { AwsError, toAwsError } from "./errors"
import { firedAction, killSelf } from "./failpoints"

export interface CallOptions {
  /** The whole call, each attempt, is interrupted (and its request aborted) after this long. */
  readonly timeout?: Duration.DurationInput
  /** Retries after the first attempt, for throttling and transient failures only. */
  readonly retries?: number
  /** The first backoff delay; later ones grow exponentially, are jittered and capped. */
  readonly baseDelay?: Duration.DurationInput
  readonly maxDelay?: Duration.DurationInput
}

export const DEFAULT_CALL_OPTIONS = {
  timeout: Duration.seconds(30),
  retries: 6,
  baseDelay: Duration.millis(200),
  maxDelay: Duration.seconds(20)
} as const

/**
 * Exponential backoff with jitter, each delay capped, a bounded number of retries,
 * and only for errors that are worth another try.
 */
export const retrySchedule = (options: CallOptions = {}) =>
  Schedule.exponential(options.baseDelay ?? DEFAULT_CALL_OPTIONS.baseDelay, 2).pipe(
    Schedule.jittered,
    Schedule.modifyDelay((delay) =>
      Duration.min(delay, Duration.decode(options.maxDelay ?? DEFAULT_CALL_OPTIONS.maxDelay))
    ),
    Schedule.intersect(Schedule.recurs(options.retries ?? DEFAULT_CALL_OPTIONS.retries)),
    Schedule.whileInput((error: AwsError) => error.retryable)
  )

/**
 * What a failpoint armed at this operation does to one attempt (see failpoints.ts): it fails
 * the way AWS answers an error that is not retried, kills the process before the request, or
 * sends the request and loses the answer.
 */
const injected = <A>(operation: string, request: Effect.Effect<A, AwsError>): Effect.Effect<A, AwsError> => {
  const action = firedAction(operation)
  switch (action) {
    case undefined:
    case "corrupt":
      return request
    case "kill":
      return Effect.sync(killSelf)
    case "hang":
      return Effect.zipRight(request, Effect.never)
    case "fail":
      return Effect.fail(new AwsError({ operation, code: "InjectedFault", message: `fault injected at ${operation}`, kind: "client" }))
    case "lost-reply":
      return Effect.zipRight(
        request,
        Effect.fail(new AwsError({ operation, code: "TimeoutError", message: "the answer was lost (fault injected)", kind: "timeout" }))
      )
  }
}

/**
 * The one way this project calls AWS: the request gets the fiber's abort signal (so
 * interruption cancels it), a timeout per attempt, and bounded jittered retries.
 *
 *   awsCall("ebs:GetSnapshotBlock", (abortSignal) => ebs.send(new GetSnapshotBlockCommand(input), { abortSignal }))
 */
export const awsCall = <A>(
  operation: string,
  run: (abortSignal: AbortSignal) => Promise<A>,
  options: CallOptions = {}
): Effect.Effect<A, AwsError> => {
  const timeout = options.timeout ?? DEFAULT_CALL_OPTIONS.timeout
  const attempt = Effect.suspend(() => injected(operation, Effect.tryPromise({ try: run, catch: toAwsError(operation) }))).pipe(
    Effect.timeoutFail({
      duration: timeout,
      onTimeout: () =>
        new AwsError({
          operation,
          code: "TimeoutError",
          message: `no answer within ${Duration.format(timeout)}`,
          kind: "timeout"
        })
    })
  )
  return Effect.retry(attempt, retrySchedule(options)).pipe(
    Effect.withSpan(operation, { attributes: { "aws.operation": operation } })
  )
}
