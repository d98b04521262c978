import { Schema } from "effect"

/** What kind of failure an AWS call had; decides whether it is retried. */
export const AwsErrorKind = Schema.Literal("throttled", "transient", "timeout", "not-found", "conflict", "client")
export type AwsErrorKind = typeof AwsErrorKind.Type

/** Every failed AWS call ends as this one error, mapped in one place. */
export class AwsError extends Schema.TaggedError<AwsError>()("AwsError", {
  operation: Schema.String,
  code: Schema.String,
  message: Schema.String,
  kind: AwsErrorKind,
  httpStatus: Schema.optional(Schema.Number)
}) {
  get retryable(): boolean {
    return this.kind === "throttled" || this.kind === "transient" || this.kind === "timeout"
  }
}

const THROTTLING_CODES = new Set([
  "Throttling",
  "ThrottlingException",
  "ThrottledException",
  "RequestThrottledException",
  "RequestThrottled",
  "TooManyRequestsException",
  "RequestLimitExceeded",
  "SlowDown",
  "ProvisionedThroughputExceededException",
  "TransactionInProgressException",
  "EC2ThrottledException",
  "BandwidthLimitExceeded",
  "LimitExceededException"
])

const TRANSIENT_CODES = new Set([
  "TimeoutError",
  "RequestTimeout",
  "RequestTimeoutException",
  "InternalError",
  "InternalFailure",
  "InternalServerError",
  "InternalServerException",
  "ServiceUnavailable",
  "ServiceUnavailableException",
  "ECONNRESET",
  "ECONNREFUSED",
  "EPIPE",
  "ETIMEDOUT",
  "EAI_AGAIN",
  "NetworkingError"
])

const NOT_FOUND = /NotFound|NoSuch|DoesNotExist|InvalidSnapshot\.NotFound|ResourceNotFound/
const CONFLICT = /ConditionalCheckFailed|Conflict|AlreadyExists|InUse|IncorrectState|InvalidState|ConcurrentModification/

const read = (value: unknown, key: string): unknown =>
  typeof value === "object" && value !== null ? Reflect.get(value, key) : undefined

/** Maps whatever the SDK threw (service exception, network error, abort) to an AwsError. */
export const toAwsError =
  (operation: string) =>
  (cause: unknown): AwsError => {
    const name = read(cause, "name")
    const errno = read(cause, "code")
    const rawMessage = read(cause, "message")
    const metadata = read(cause, "$metadata")
    const status = read(metadata, "httpStatusCode")
    const httpStatus = typeof status === "number" ? status : undefined
    // The SDK could not parse the answer (an HTML error page from a proxy or a failing
    // endpoint): its parser's complaint says nothing useful, the HTTP status does.
    const unreadable = typeof rawMessage === "string" && rawMessage.includes("Deserialization error")
    const code = unreadable
      ? "UnreadableResponse"
      : typeof errno === "string" && TRANSIENT_CODES.has(errno)
        ? errno
        : typeof name === "string"
          ? name
          : "Unknown"
    const message = unreadable
      ? `HTTP ${httpStatus ?? "?"} with a body that is not an AWS response`
      : typeof rawMessage === "string" && rawMessage.length > 0
        ? rawMessage
        : String(cause)
    const sdkRetryable = read(cause, "$retryable")
    const throttlingFlag = read(sdkRetryable, "throttling")
    const kind: AwsErrorKind =
      THROTTLING_CODES.has(code) || throttlingFlag === true || httpStatus === 429
        ? "throttled"
        : TRANSIENT_CODES.has(code) || (httpStatus !== undefined && httpStatus >= 500) || sdkRetryable !== undefined
          ? "transient"
          : NOT_FOUND.test(code) || httpStatus === 404
            ? "not-found"
            : CONFLICT.test(code) || httpStatus === 409
              ? "conflict"
              : "client"
    return new AwsError({ operation, code, message, kind, ...(httpStatus === undefined ? {} : { httpStatus }) })
  }
