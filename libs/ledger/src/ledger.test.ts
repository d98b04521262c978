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

describe("the ledger on the emulator", () => {
  it.effect("claims a new step once and turns a second claim into busy while the lease lives", () =>
    Effect.gen(function* () {
      const ledger = yield* Ledger
      const first = yield* ledger.claim(step("a"), 60_000)
      const second = yield* Effect.flip(ledger.claim(step("a"), 60_000))
      assert.strictEqual(first.status, "running")
      assert.strictEqual(first.attempts, 1)
      assert.strictEqual(second._tag, "StepBusy")
    }).pipe(Effect.provide(ledgerLayer()))
  )

  it.effect("makes a finished step a no-op that returns its outcome", () =>
    Effect.gen(function* () {
      const ledger = yield* Ledger
      yield* ledger.claim(step("b"), 60_000)
      yield* ledger.succeed(step("b"), { location: "s3://bucket/key" })
      const again = yield* Effect.flip(ledger.claim(step("b"), 60_000))
      assert.strictEqual(again._tag, "StepAlreadyDone")
      assert.deepStrictEqual(again._tag === "StepAlreadyDone" ? again.outcome : undefined, { location: "s3://bucket/key" })
    }).pipe(Effect.provide(ledgerLayer()))
  )

  it.effect("lets a failed step run again and counts the attempt", () =>
    Effect.gen(function* () {
      const ledger = yield* Ledger
      yield* ledger.claim(step("c"), 60_000)
      yield* ledger.fail(step("c"), "snapshot not found", { status: "failed" })
      const retried = yield* ledger.claim(step("c"), 60_000)
      assert.strictEqual(retried.attempts, 2)
      assert.isUndefined(retried.reason)
    }).pipe(Effect.provide(ledgerLayer()))
  )

  it.effect("hands a step whose lease expired to a new worker with the upload to resume", () =>
    Effect.gen(function* () {
      const ledger = yield* Ledger
      yield* ledger.claim(step("d"), 1)
      const upload = { bucket: "b", key: "k", uploadId: "u-1", partSize: 8_388_608, partsDone: 3, inputOffset: 25_165_824 }
      yield* ledger.saveUpload(step("d"), upload)
      yield* TestClock.adjust("20 millis")
      const resumed = yield* ledger.claim(step("d"), 60_000)
      assert.deepStrictEqual(resumed.upload, upload)
      assert.strictEqual(resumed.attempts, 2)
    }).pipe(Effect.provide(ledgerLayer()))
  )

  it.effect("refuses to finish a step that this worker does not hold", () =>
    Effect.gen(function* () {
      const ledger = yield* Ledger
      const error = yield* Effect.flip(ledger.succeed(step("never-claimed"), {}))
      assert.strictEqual(error._tag, "LeaseLost")
    }).pipe(Effect.provide(ledgerLayer()))
  )
})
