import { assert, describe, it } from "@effect/vitest"
import { DescribeSnapshotsCommand, type DescribeSnapshotsCommandInput } from "@aws-sdk/client-ec2"
import { Effect, Fiber, TestClock } from "effect"
import { replicateEbsSnapshot } from "./ebs"
import { SOURCE_ACCOUNT, job, mockAccounts, mockDestinationCopies, plan } from "./test-accounts"

const SNAPSHOTS = 150

/** Lets the mocked clients' promises settle between two steps of the test clock. */
const settle = Effect.promise(() => new Promise((resolve) => setImmediate(resolve)))

describe("replicating many snapshots to one destination", () => {
  it.effect("keeps at most 20 copies in flight and completes every one of 150", () =>
    Effect.gen(function* () {
      // Prepare: a destination where each copy stays pending for two polls, counting copies in flight
      const mocks = mockAccounts()
      mocks.sourceEc2.on(DescribeSnapshotsCommand).callsFake(async (input: DescribeSnapshotsCommandInput) => ({
        Snapshots: [{ SnapshotId: input.SnapshotIds?.[0], State: "completed", VolumeSize: 8, StartTime: new Date(0) }]
      }))
      const destination = mockDestinationCopies(mocks, { pendingPolls: 2 })
      // Same account, another region: no share, so only the copies count
      const jobs = Array.from({ length: SNAPSHOTS }, (_, index) =>
        job(`snap-0src${String(index).padStart(13, "0")}`, {
          resourceArn: `arn:aws:ec2:us-east-1:${SOURCE_ACCOUNT}:volume/vol-${String(index).padStart(17, "0")}`,
          plan: plan({ destinationAccount: SOURCE_ACCOUNT, roleArn: undefined, externalId: undefined })
        })
      )
      // Act: every one at once, the test clock moved on until all are done
      const fiber = yield* Effect.fork(Effect.forEach(jobs, replicateEbsSnapshot, { concurrency: "unbounded" }).pipe(Effect.provide(mocks.layer)))
      for (let step = 0; step < 5_000 && fiber.unsafePoll() === null; step += 1) {
        yield* settle
        yield* TestClock.adjust("5 seconds")
      }
      const results = yield* Fiber.join(fiber)
      // Assess: the bound was reached and never passed, and every snapshot got exactly one replica
      assert.strictEqual(destination.mostInFlight(), 20)
      assert.strictEqual(destination.inFlight(), 0)
      assert.strictEqual(destination.copiesMade(), SNAPSHOTS)
      assert.deepStrictEqual(
        [...destination.copiedFrom().values()].sort(),
        jobs.map((entry) => entry.recoveryPointArn.split("/")[1]).sort()
      )
      assert.isTrue(results.every((result) => result._tag === "Succeeded"))
      assert.strictEqual(new Set(results.map((result) => result.outcome.replicaArn)).size, SNAPSHOTS)
    })
  )

  it.effect("holds a smaller bound when the rule asks for one", () =>
    Effect.gen(function* () {
      // Prepare
      const mocks = mockAccounts()
      mocks.sourceEc2.on(DescribeSnapshotsCommand).resolves({ Snapshots: [{ SnapshotId: "snap-0src", State: "completed", VolumeSize: 8 }] })
      const destination = mockDestinationCopies(mocks, { pendingPolls: 1 })
      const jobs = Array.from({ length: 12 }, (_, index) =>
        job(`snap-0src${index}`, { plan: plan({ destinationAccount: SOURCE_ACCOUNT, roleArn: undefined, externalId: undefined, maxConcurrentCopies: 3 }) })
      )
      // Act
      const fiber = yield* Effect.fork(Effect.forEach(jobs, replicateEbsSnapshot, { concurrency: "unbounded" }).pipe(Effect.provide(mocks.layer)))
      for (let step = 0; step < 1_000 && fiber.unsafePoll() === null; step += 1) {
        yield* settle
        yield* TestClock.adjust("5 seconds")
      }
      const results = yield* Fiber.join(fiber)
      // Assess
      assert.strictEqual(destination.mostInFlight(), 3)
      assert.strictEqual(destination.copiesMade(), 12)
      assert.isTrue(results.every((result) => result._tag === "Succeeded"))
    })
  )
})
