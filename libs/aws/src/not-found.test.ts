import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit } from "effect"
import { AwsError } from "./errors"
import { undefinedWhenNotFound } from "./not-found"

const failure = (kind: AwsError["kind"]) => new AwsError({ operation: "ec2:DescribeSnapshots", code: "Code", message: "message", kind })

describe("reading a not-found answer as no resource", () => {
  it.effect("answers undefined when the resource does not exist", () =>
    Effect.gen(function* () {
      // Prepare
      const describe = Effect.fail(failure("not-found"))
      // Act
      const found = yield* undefinedWhenNotFound(describe)
      // Assess
      assert.isUndefined(found)
    })
  )

  it.effect("passes the answer through when there is one", () =>
    Effect.gen(function* () {
      // Prepare
      const describe = Effect.succeed({ SnapshotId: "snap-0123456789abcdef0" })
      // Act
      const found = yield* undefinedWhenNotFound(describe)
      // Assess
      assert.deepStrictEqual(found, { SnapshotId: "snap-0123456789abcdef0" })
    })
  )

  it.effect("keeps every other failure, so that a throttled or refused call is not taken for a missing resource", () =>
    Effect.gen(function* () {
      // Prepare
      const kinds = ["throttled", "transient", "timeout", "conflict", "client"] as const
      // Act
      const exits = yield* Effect.forEach(kinds, (kind) => Effect.exit(undefinedWhenNotFound(Effect.fail(failure(kind)))))
      // Assess
      assert.deepStrictEqual(
        exits.map((exit) => (Exit.isFailure(exit) ? "failed" : "succeeded")),
        kinds.map(() => "failed")
      )
    })
  )
})
