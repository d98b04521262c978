import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { Effect, Layer, TestClock } from "effect"
import { type Emulator, type ProvisionedStack, emulatorClients, provisionService, serviceSettingsFor, startEmulator } from "@backup-actions/local"
import { Ledger } from "./ledger"

let emulator: Emulator
let stack: ProvisionedStack

beforeAll(async () => {
  emulator = await startEmulator({ name: "ledger-test" })
  stack = await Effect.runPromise(
    Effect.scoped(provisionService({ prefix: "ledger-test", service: "streamer", patterns: [] }).pipe(Effect.provide(emulatorClients(emulator.endpoint))))
  )
})
afterAll(() => emulator.stop())

const ledgerLayer = () =>
  Ledger.Live.pipe(
    Layer.provide(emulatorClients(emulator.endpoint)),
    Layer.provide(serviceSettingsFor(stack, "streamer"))
  )

const step = (name: string) => ({ recoveryPointArn: `arn:aws:ec2:us-east-1::snapshot/snap-${name}`, action: "archive:direct" })

const options = (leaseMs: number) => ({ leaseMs, maxAttempts: 3 })

describe("the ledger on the emulator", () => {
  it.effect("claims a new step once and turns a second claim into busy while the lease lives", () =>
    Effect.gen(function* () {
      const ledger = yield* Ledger
      const first = yield* ledger.claim(step("a"), options(60_000))
      const second = yield* Effect.flip(ledger.claim(step("a"), options(60_000)))
      assert.strictEqual(first.record.status, "running")
      assert.strictEqual(first.claim.attempt, 1)
      assert.strictEqual((yield* ledger.get(step("a")))?.owner, first.claim.owner)
      assert.strictEqual(second._tag, "StepBusy")
    }).pipe(Effect.provide(ledgerLayer()))
  )

  it.effect("makes a finished step a no-op that returns its outcome, unpublished until it is marked", () =>
    Effect.gen(function* () {
      const ledger = yield* Ledger
      const { claim } = yield* ledger.claim(step("b"), options(60_000))
      yield* ledger.finish(claim, { status: "succeeded", outcome: { location: "s3://bucket/key" }, event: { detailType: "Archive Completed", resources: ["r"] } })
      const again = yield* Effect.flip(ledger.claim(step("b"), options(60_000)))
      assert.strictEqual(again._tag, "StepAlreadyDone")
      const finished = again._tag === "StepAlreadyDone" ? again.finished : undefined
      assert.deepStrictEqual(finished?.outcome, { location: "s3://bucket/key" })
      assert.isFalse(finished?.published)
      assert.deepStrictEqual(finished?.event, { detailType: "Archive Completed", resources: ["r"] })
      const waiting = yield* ledger.unpublished("Archive Completed", Number.MAX_SAFE_INTEGER)
      assert.isTrue(waiting.some((record) => record.recoveryPointArn === step("b").recoveryPointArn))
      yield* ledger.markPublished(step("b"))
      assert.isTrue((yield* ledger.get(step("b")))?.published)
      const left = yield* ledger.unpublished("Archive Completed", Number.MAX_SAFE_INTEGER)
      assert.isFalse(left.some((record) => record.recoveryPointArn === step("b").recoveryPointArn))
    }).pipe(Effect.provide(ledgerLayer()))
  )

  it.effect("lets a failed step run again and counts the attempt", () =>
    Effect.gen(function* () {
      const ledger = yield* Ledger
      const { claim } = yield* ledger.claim(step("c"), options(60_000))
      yield* ledger.finish(claim, { status: "failed", outcome: { status: "failed" }, reason: "snapshot not found" })
      const retried = yield* ledger.claim(step("c"), options(60_000))
      assert.strictEqual(retried.claim.attempt, 2)
      assert.isUndefined((yield* ledger.get(step("c")))?.reason)
    }).pipe(Effect.provide(ledgerLayer()))
  )

  it.effect("hands a step whose lease expired to a new worker with the upload to resume, and records the takeover", () =>
    Effect.gen(function* () {
      const ledger = yield* Ledger
      const first = yield* ledger.claim(step("d"), options(1))
      const upload = { bucket: "b", key: "k", uploadId: "u-1", partSize: 8_388_608, partsDone: 3, inputOffset: 25_165_824 }
      yield* ledger.saveUpload(first.claim, upload)
      yield* TestClock.adjust("20 millis")
      const resumed = yield* ledger.claim(step("d"), options(60_000))
      assert.deepStrictEqual(resumed.record.upload, upload)
      assert.strictEqual(resumed.claim.attempt, 2)
      const stored = yield* ledger.get(step("d"))
      assert.strictEqual(stored?.takeovers, 1)
      assert.strictEqual(stored?.lastTakeover?.from, first.claim.owner)
    }).pipe(Effect.provide(ledgerLayer()))
  )

  it.effect("refuses every write of a worker whose step was taken over", () =>
    Effect.gen(function* () {
      const ledger = yield* Ledger
      const stale = yield* ledger.claim(step("e"), options(1))
      yield* TestClock.adjust("20 millis")
      yield* ledger.claim(step("e"), options(60_000))
      const finish = yield* Effect.flip(ledger.finish(stale.claim, { status: "failed", outcome: {}, reason: "stale" }))
      const renew = yield* Effect.flip(ledger.renew(stale.claim, 60_000))
      const progress = yield* Effect.flip(ledger.saveUpload(stale.claim, undefined))
      assert.deepStrictEqual([finish._tag, renew._tag, progress._tag], ["LeaseLost", "LeaseLost", "LeaseLost"])
      assert.strictEqual((yield* ledger.get(step("e")))?.status, "running")
    }).pipe(Effect.provide(ledgerLayer()))
  )

  it.effect("finds a step exhausted once its attempts are used up, and gives it up only as the claim found it", () =>
    Effect.gen(function* () {
      const ledger = yield* Ledger
      for (let attempt = 0; attempt < 3; attempt += 1) {
        yield* ledger.claim(step("f"), options(1))
        yield* TestClock.adjust("20 millis")
      }
      const exhausted = yield* Effect.flip(ledger.claim(step("f"), options(60_000)))
      assert.strictEqual(exhausted._tag, "StepExhausted")
      const current = exhausted._tag === "StepExhausted" ? exhausted.current : undefined
      assert.strictEqual(current?.attempts, 3)
      if (current === undefined) return
      yield* ledger.giveUp(current, { status: "failed", outcome: { status: "failed" }, reason: "gave up after 3 attempts: the worker died" })
      const twice = yield* Effect.flip(ledger.giveUp(current, { status: "failed", outcome: {}, reason: "again" }))
      assert.strictEqual(twice._tag, "LeaseLost")
      const done = yield* Effect.flip(ledger.claim(step("f"), options(60_000)))
      assert.strictEqual(done._tag, "StepAlreadyDone")
      assert.isTrue(done._tag === "StepAlreadyDone" && done.finished.gaveUp)
      assert.strictEqual((yield* ledger.get(step("f")))?.reason, "gave up after 3 attempts: the worker died")
    }).pipe(Effect.provide(ledgerLayer()))
  )

  it.effect("refuses to finish a step that this worker does not hold", () =>
    Effect.gen(function* () {
      const ledger = yield* Ledger
      const error = yield* Effect.flip(ledger.finish({ ...step("never-claimed"), owner: "nobody", attempt: 1 }, { status: "succeeded", outcome: {} }))
      assert.strictEqual(error._tag, "LeaseLost")
    }).pipe(Effect.provide(ledgerLayer()))
  )
})
