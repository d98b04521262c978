import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Layer, Option, Ref, TestClock } from "effect"
import { AwsError } from "@backup-actions/aws"
import { ServiceSettings } from "@backup-actions/config"
import { RestoreCompleted, type DetailOf } from "@backup-actions/contracts"
import { Ledger, failed, succeeded, type StepKey } from "@backup-actions/ledger"
import { makeMemoryLedger } from "@backup-actions/ledger/testing"
import { deleteSourceOnce, DELETE_SOURCE_ACTION } from "./source-deletion"
import { runStep } from "./step"
import { makeMemoryPublisher } from "./publisher-memory"

type Detail = DetailOf<typeof RestoreCompleted>

const LEASE_SECONDS = 60
const MAX_ATTEMPTS = 3
const arn = "arn:aws:ec2:us-east-1::snapshot/snap-0123456789abcdef0"
const step: StepKey = { recoveryPointArn: arn, action: "restore:volume" }

const detail = (status: "restored" | "failed", reason?: string): Detail => ({
  schemaVersion: 1,
  correlationId: arn,
  idempotencyKey: `${arn}#restore:volume`,
  resourceType: "EBS",
  backupVaultName: "Default",
  snapshotId: "snap-0123456789abcdef0",
  plan: { rule: "r", mode: "volume", compression: "zstd", deleteSourceAfterVerify: false },
  status,
  ...(reason === undefined ? {} : { reason })
})

const spec = {
  step,
  contract: RestoreCompleted,
  resources: [arn],
  gaveUp: (reason: string) => detail("failed", reason)
}

/** An in-memory ledger and publisher and the settings of the step runtime. */
const world = () => {
  const ledger = makeMemoryLedger()
  const publisher = makeMemoryPublisher()
  const settings = ServiceSettings.layer({
    busName: "bus",
    artifactBucket: "bucket",
    ledgerTable: "ledger",
    queueUrl: "queue",
    deadLetterQueueUrl: "dlq",
    workDir: "/tmp",
    stepLeaseSeconds: LEASE_SECONDS,
    stepMaxAttempts: MAX_ATTEMPTS
  })
  return { ledger, publisher, layer: Layer.mergeAll(ledger.layer, publisher.layer, settings) }
}

/** A worker that claims the step and dies (its fiber interrupted) before recording anything. */
const dieDuringStep = Effect.gen(function* () {
  const started = yield* Deferred.make<void>()
  const fiber = yield* Effect.fork(runStep(spec, () => Effect.zipRight(Deferred.succeed(started, undefined), Effect.never)))
  yield* Deferred.await(started)
  yield* Fiber.interrupt(fiber)
})

describe("the step runtime", () => {
  it.effect("records a step, then publishes its outcome exactly once and marks it published", () => {
    const { ledger, publisher, layer } = world()
    return Effect.gen(function* () {
      // Act
      const result = yield* runStep(spec, () => Effect.succeed(succeeded(detail("restored"))))
      const again = yield* runStep(spec, () => Effect.die("a finished step must not run again"))
      // Assess
      assert.isTrue(Option.isSome(result))
      assert.isTrue(Option.isNone(again))
      assert.strictEqual(publisher.published.length, 1)
      const record = ledger.items.get(`${arn}\u0000restore:volume`)
      assert.strictEqual(record?.status, "succeeded")
      assert.isTrue(record?.published)
    }).pipe(Effect.provide(layer))
  })

  it.effect("keeps the outcome when PutEvents fails, and the next delivery publishes the stored outcome without running the work", () => {
    const { ledger, publisher, layer } = world()
    return Effect.gen(function* () {
      // Prepare
      const runs = yield* Ref.make(0)
      const work = () => Effect.as(Ref.update(runs, (count) => count + 1), succeeded(detail("restored")))
      publisher.refuseNext(1)
      // Act
      const first = yield* Effect.flip(runStep(spec, work))
      const unpublished = ledger.items.get(`${arn}\u0000restore:volume`)
      const second = yield* runStep(spec, work)
      // Assess
      assert.strictEqual(first._tag, "PublishFailed")
      assert.isFalse(unpublished?.published)
      assert.isTrue(Option.isNone(second))
      assert.strictEqual(yield* Ref.get(runs), 1)
      assert.strictEqual(publisher.published.length, 1)
      assert.strictEqual((publisher.published[0]?.detail as Detail).status, "restored")
      assert.isTrue(ledger.items.get(`${arn}\u0000restore:volume`)?.published)
    }).pipe(Effect.provide(layer))
  })

  it.effect("fails a delivery that finds the stored outcome damaged with LedgerItemInvalid naming the step, and publishes nothing", () => {
    const { ledger, publisher, layer } = world()
    return Effect.gen(function* () {
      // Prepare: a finished step whose outcome waits in the outbox, then is damaged in the table
      publisher.refuseNext(1)
      yield* Effect.flip(runStep(spec, () => Effect.succeed(succeeded(detail("restored")))))
      const key = `${arn}\u0000restore:volume`
      const stored = ledger.items.get(key)
      if (stored !== undefined) ledger.items.set(key, { ...stored, outcome: { ...stored.outcome, status: "maybe" } })
      // Act
      const error = yield* Effect.flip(runStep(spec, () => Effect.die("a finished step must not run again")))
      // Assess
      assert.strictEqual(error._tag, "LedgerItemInvalid")
      assert.include(error._tag === "LedgerItemInvalid" ? `${error.key}: ${error.reason}` : "", `${arn} restore:volume: its outcome is not a "Restore Completed" detail: detail.status`)
      assert.strictEqual(publisher.published.length, 0)
      assert.isFalse(ledger.items.get(key)?.published)
    }).pipe(Effect.provide(layer))
  })

  it.effect("stops a worker whose lease lapsed while renewals failed; it publishes nothing and the worker that took over finishes the step", () => {
    const { ledger, publisher, layer } = world()
    return Effect.gen(function* () {
      // Prepare: the first worker's renewals fail (it is cut off from DynamoDB) and its work never ends by itself.
      const live = yield* Ledger
      const partitioned = Layer.succeed(Ledger, {
        ...live,
        renew: () => Effect.fail(new AwsError({ operation: "dynamodb:UpdateItem", code: "TimeoutError", message: "no answer", kind: "timeout" }))
      })
      const stale = yield* Effect.fork(runStep(spec, () => Effect.as(Effect.never, succeeded(detail("restored")))).pipe(Effect.provide(partitioned)))
      yield* TestClock.adjust("1 second")
      // Act: its lease lapses; a second worker takes the step over and finishes it.
      yield* TestClock.adjust(`${LEASE_SECONDS + 1} seconds`)
      const staleExit = yield* Fiber.await(stale)
      const second = yield* runStep(spec, () => Effect.succeed(succeeded(detail("restored"))))
      // Assess
      assert.strictEqual(staleExit._tag, "Failure")
      assert.isTrue(staleExit._tag === "Failure" && JSON.stringify(staleExit.cause).includes("LeaseLost"))
      assert.isTrue(Option.isSome(second))
      assert.strictEqual(publisher.published.length, 1)
      const record = ledger.items.get(`${arn}\u0000restore:volume`)
      assert.strictEqual(record?.takeovers, 1)
      assert.strictEqual(record?.attempts, 2)
    }).pipe(Effect.provide(layer))
  })

  it.effect("refuses every write of a worker whose step was taken over", () => {
    const { layer } = world()
    return Effect.gen(function* () {
      // Prepare
      const ledger = yield* Ledger
      const first = yield* ledger.claim(step, { leaseMs: 1_000, maxAttempts: MAX_ATTEMPTS })
      yield* TestClock.adjust("2 seconds")
      const second = yield* ledger.claim(step, { leaseMs: 60_000, maxAttempts: MAX_ATTEMPTS })
      // Act
      const finish = yield* Effect.flip(ledger.finish(first.claim, { status: "failed", outcome: {}, reason: "stale" }))
      const renew = yield* Effect.flip(ledger.renew(first.claim, 60_000))
      const progress = yield* Effect.flip(ledger.saveUpload(first.claim, undefined))
      // Assess
      assert.strictEqual(finish._tag, "LeaseLost")
      assert.strictEqual(renew._tag, "LeaseLost")
      assert.strictEqual(progress._tag, "LeaseLost")
      assert.strictEqual((yield* ledger.get(step))?.owner, second.claim.owner)
      assert.strictEqual((yield* ledger.get(step))?.lastTakeover?.from, first.claim.owner)
    }).pipe(Effect.provide(layer))
  })

  it.effect("gives up a step that kills its worker every time, announces the failure once and sends its message to the DLQ", () => {
    const { ledger, publisher, layer } = world()
    return Effect.gen(function* () {
      // Prepare: the worker dies MAX_ATTEMPTS times, each time after its lease lapses.
      for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt += 1) {
        yield* dieDuringStep
        yield* TestClock.adjust(`${LEASE_SECONDS + 1} seconds`)
      }
      // Act
      const error = yield* Effect.flip(runStep(spec, () => Effect.die("must not run")))
      const again = yield* Effect.flip(runStep(spec, () => Effect.die("must not run")))
      // Assess
      assert.strictEqual(error._tag, "StepGaveUp")
      assert.strictEqual(error._tag === "StepGaveUp" ? error.reason : "", `gave up after ${MAX_ATTEMPTS} attempts: the worker died`)
      assert.strictEqual(again._tag, "StepGaveUp")
      assert.strictEqual(publisher.published.length, 1)
      assert.strictEqual((publisher.published[0]?.detail as Detail).status, "failed")
      const record = ledger.items.get(`${arn}\u0000restore:volume`)
      assert.strictEqual(record?.status, "failed")
      assert.isTrue(record?.gaveUp)
    }).pipe(Effect.provide(layer))
  })

  it.effect("gives up a step that keeps failing with its last reason, without announcing it again", () => {
    const { publisher, layer } = world()
    return Effect.gen(function* () {
      // Prepare
      for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt += 1) {
        yield* runStep(spec, () => Effect.succeed(failed(`snapshot busy (${attempt})`, detail("failed", `snapshot busy (${attempt})`))))
      }
      // Act
      const error = yield* Effect.flip(runStep(spec, () => Effect.die("must not run")))
      // Assess
      assert.strictEqual(error._tag === "StepGaveUp" ? error.reason : error._tag, `gave up after ${MAX_ATTEMPTS} attempts: snapshot busy (${MAX_ATTEMPTS})`)
      assert.strictEqual(publisher.published.length, MAX_ATTEMPTS)
    }).pipe(Effect.provide(layer))
  })

  it.effect("deletes the source only after the step is recorded, once, even when the worker dies after deleting it", () => {
    const { ledger, publisher, layer } = world()
    return Effect.gen(function* () {
      // Prepare: a source that a describe sees gone after its first deletion.
      const deletions = yield* Ref.make(0)
      const remove = Effect.as(Ref.update(deletions, (count) => count + 1), "deleted" as const)
      const recordedBeforeDeletion = yield* Ref.make(false)
      const dyingSpec = {
        ...spec,
        afterSuccess: (_outcome: Detail) =>
          Effect.gen(function* () {
            yield* Ref.set(recordedBeforeDeletion, ledger.items.get(`${arn}\u0000restore:volume`)?.status === "succeeded")
            yield* deleteSourceOnce(arn, remove)
            // The worker dies here, after the deletion and before the event.
            return yield* Effect.interrupt
          })
      }
      const steadySpec = { ...spec, afterSuccess: (outcome: Detail) => Effect.as(deleteSourceOnce(arn, remove), outcome) }
      // Act
      const crashed = yield* Effect.exit(runStep(dyingSpec, () => Effect.succeed(succeeded(detail("restored")))))
      const redelivered = yield* runStep(steadySpec, () => Effect.die("the recorded step must not run again"))
      // Assess
      assert.strictEqual(crashed._tag, "Failure")
      assert.isTrue(yield* Ref.get(recordedBeforeDeletion))
      assert.isTrue(Option.isNone(redelivered))
      assert.strictEqual(yield* Ref.get(deletions), 1)
      assert.strictEqual(publisher.published.length, 1)
      assert.strictEqual(ledger.items.get(`${arn}\u0000${DELETE_SOURCE_ACTION}`)?.outcome?.["state"], "deleted")
    }).pipe(Effect.provide(layer))
  })

  it.effect("records a deletion that failed as a source still there, with the reason", () => {
    const { layer } = world()
    return Effect.gen(function* () {
      // Act
      const state = yield* deleteSourceOnce(
        arn,
        Effect.fail(new AwsError({ operation: "backup:DeleteRecoveryPoint", code: "AccessDeniedException", message: "not allowed", kind: "client" }))
      )
      // Assess
      assert.strictEqual(state, "still-there")
      const record = yield* (yield* Ledger).get({ recoveryPointArn: arn, action: DELETE_SOURCE_ACTION })
      assert.strictEqual(record?.status, "failed")
      assert.strictEqual(record?.reason, "not allowed")
    }).pipe(Effect.provide(layer))
  })
})
