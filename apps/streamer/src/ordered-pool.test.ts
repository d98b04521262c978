import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Fiber, Option, TestClock } from "effect"
import { makeOrderedPool } from "./ordered-pool"

describe("the ordered pool", () => {
  it.scoped("hands results back in submission order however long each one takes", () =>
    Effect.gen(function* () {
      // Prepare: work that finishes in reverse order
      const pool = yield* makeOrderedPool<number, never>(4)
      const delays = [40, 30, 20, 10]
      const producer = yield* Effect.fork(
        Effect.gen(function* () {
          for (const [index, delay] of delays.entries()) yield* pool.submit(Effect.as(Effect.sleep(Duration.millis(delay)), index))
          yield* pool.end
        })
      )
      // Act
      const reader = yield* Effect.fork(
        Effect.gen(function* () {
          const seen: Array<number> = []
          while (true) {
            const next = yield* pool.next
            if (Option.isNone(next)) return seen
            seen.push(next.value)
          }
        })
      )
      yield* TestClock.adjust(Duration.millis(100))
      yield* Fiber.join(producer)
      // Assess
      assert.deepStrictEqual(yield* Fiber.join(reader), [0, 1, 2, 3])
    })
  )

  it.scoped("makes the producer wait while the reader is behind", () =>
    Effect.gen(function* () {
      const pool = yield* makeOrderedPool<number, never>(2)
      let submitted = 0
      yield* Effect.fork(
        Effect.gen(function* () {
          for (let index = 0; index < 10; index += 1) {
            yield* pool.submit(Effect.succeed(index))
            submitted += 1
          }
        })
      )
      yield* TestClock.adjust(Duration.millis(10))
      assert.strictEqual(submitted, 2)
      yield* pool.next
      yield* TestClock.adjust(Duration.millis(10))
      assert.strictEqual(submitted, 3)
    })
  )

  it.scoped("passes a failed work's error to the reader at its place in the order", () =>
    Effect.gen(function* () {
      const pool = yield* makeOrderedPool<string, string>(4)
      yield* pool.submit(Effect.succeed("first"))
      yield* pool.submit(Effect.fail("second broke"))
      yield* pool.submit(Effect.succeed("third"))
      assert.deepStrictEqual(yield* pool.next, Option.some("first"))
      assert.strictEqual(yield* Effect.flip(pool.next), "second broke")
    })
  )
})
