import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Exit, Fiber, TestClock } from "effect"
import { awsCall } from "./call"
import { AwsError, toAwsError } from "./errors"

const throttled = Object.assign(new Error("Rate exceeded"), {
  name: "ThrottlingException",
  $metadata: { httpStatusCode: 400 }
})
const denied = Object.assign(new Error("not allowed"), { name: "AccessDeniedException", $metadata: { httpStatusCode: 403 } })

describe("mapping SDK failures to AwsError", () => {
  it("classifies throttling, server faults, network resets, missing resources and conflicts", () => {
    const kinds = [
      throttled,
      Object.assign(new Error("boom"), { name: "InternalError", $metadata: { httpStatusCode: 500 } }),
      Object.assign(new Error("socket hang up"), { code: "ECONNRESET" }),
      Object.assign(new Error("gone"), { name: "InvalidSnapshot.NotFound", $metadata: { httpStatusCode: 400 } }),
      Object.assign(new Error("taken"), { name: "ConditionalCheckFailedException", $metadata: { httpStatusCode: 400 } }),
      denied
    ].map((error) => toAwsError("op")(error).kind)
    assert.deepStrictEqual(kinds, ["throttled", "transient", "transient", "not-found", "conflict", "client"])
  })

  it("names the HTTP status, not the parser's complaint, when the answer is not an AWS response", () => {
    // Prepare: what the SDK throws for an HTML error page with status 500
    const htmlPage = Object.assign(
      new SyntaxError(`Unexpected token '<', "<!doctype "... is not valid JSON\n  Deserialization error: to see the raw response, inspect the hidden field {error}.$response on this object.`),
      { $metadata: { httpStatusCode: 500 } }
    )
    // Act
    const error = toAwsError("ebs:ListSnapshotBlocks")(htmlPage)
    // Assess: one clear line, still retried as a server fault
    assert.strictEqual(error.code, "UnreadableResponse")
    assert.strictEqual(error.message, "HTTP 500 with a body that is not an AWS response")
    assert.strictEqual(error.kind, "transient")
  })
})

describe("awsCall", () => {
  it.effect("retries throttling with growing delays and succeeds when the service recovers", () =>
    Effect.gen(function* () {
      // Prepare: a call that is throttled three times
      let attempts = 0
      const call = awsCall("test:Op", () => {
        attempts += 1
        return attempts <= 3 ? Promise.reject(throttled) : Promise.resolve("done")
      })
      // Act: run it while the test clock advances past every backoff
      const fiber = yield* Effect.fork(call)
      yield* TestClock.adjust(Duration.minutes(5))
      const result = yield* Fiber.join(fiber)
      // Assess
      assert.strictEqual(result, "done")
      assert.strictEqual(attempts, 4)
    })
  )

  it.effect("waits before retrying instead of hammering a throttled service", () =>
    Effect.gen(function* () {
      let attempts = 0
      const fiber = yield* Effect.fork(
        awsCall("test:Op", () => {
          attempts += 1
          return Promise.reject(throttled)
        })
      )
      yield* TestClock.adjust(Duration.millis(1))
      assert.strictEqual(attempts, 1)
      yield* TestClock.adjust(Duration.minutes(10))
      const exit = yield* Fiber.await(fiber)
      assert.isTrue(Exit.isFailure(exit))
      assert.strictEqual(attempts, 7)
    })
  )

  it.effect("does not retry an error that another try cannot fix", () =>
    Effect.gen(function* () {
      let attempts = 0
      const error = yield* Effect.flip(
        awsCall("test:Op", () => {
          attempts += 1
          return Promise.reject(denied)
        })
      )
      assert.strictEqual(attempts, 1)
      assert.instanceOf(error, AwsError)
      assert.strictEqual(error.code, "AccessDeniedException")
    })
  )

  it.effect("times out an attempt that never answers and aborts its request", () =>
    Effect.gen(function* () {
      const signals: Array<AbortSignal> = []
      const fiber = yield* Effect.fork(
        awsCall(
          "test:Hang",
          (signal) => {
            signals.push(signal)
            return new Promise<never>(() => undefined)
          },
          { timeout: Duration.seconds(5), retries: 1 }
        )
      )
      yield* TestClock.adjust(Duration.minutes(1))
      const exit = yield* Fiber.await(fiber)
      assert.isTrue(Exit.isFailure(exit))
      assert.strictEqual(signals.length, 2)
      assert.isTrue(signals.every((signal) => signal.aborted))
    })
  )
})
