import { randomUUID } from "node:crypto"
import { Clock, Effect, Layer } from "effect"
import { LeaseLost, Ledger, claimedRecord, isClaimable, refusalOf, type Claim, type LedgerShape, type StepAlreadyDone, type StepBusy, type StepExhausted, type StepKey, type StepRecord } from "./ledger"

const keyOf = (step: StepKey): string => `${step.recoveryPointArn}\u0000${step.action}`

/**
 * The ledger in memory, with the same conditions as the DynamoDB one: for tests of the step
 * runtime and of handlers' decisions that need no DynamoDB. `items` is the table, to look at.
 */
export const makeMemoryLedger = () => {
  const items = new Map<string, StepRecord>()
  const lost = (step: StepKey) => new LeaseLost({ recoveryPointArn: step.recoveryPointArn, action: step.action })
  const held = (claim: Claim): StepRecord | undefined => {
    const item = items.get(keyOf(claim))
    return item?.status === "running" && item.owner === claim.owner ? item : undefined
  }
  const put = (record: StepRecord) => void items.set(keyOf(record), record)

  const shape: LedgerShape = {
    get: (step) => Effect.sync(() => items.get(keyOf(step))),
    claim: (step, options) =>
      Effect.flatMap(Clock.currentTimeMillis, (now): Effect.Effect<{ readonly claim: Claim; readonly record: StepRecord }, StepAlreadyDone | StepBusy | StepExhausted> => {
        const old = items.get(keyOf(step))
        if (old !== undefined && !isClaimable(old, now, options.maxAttempts)) return Effect.fail(refusalOf(step, old, now, options.maxAttempts))
        const owner = randomUUID()
        const record = claimedRecord(step, old, { owner, now, leaseMs: options.leaseMs })
        put(record)
        return Effect.succeed({ claim: { ...step, owner, attempt: record.attempts }, record })
      }),
    renew: (claim, leaseMs) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const item = held(claim)
        if (item === undefined) return Effect.fail(lost(claim))
        put({ ...item, leaseUntil: now + leaseMs })
        return Effect.succeed(now + leaseMs)
      }),
    saveUpload: (claim, upload) =>
      Effect.suspend(() => {
        const item = held(claim)
        if (item === undefined) return Effect.fail(lost(claim))
        const { upload: _previous, ...rest } = item
        put(upload === undefined ? rest : { ...rest, upload })
        return Effect.void
      }),
    finish: (claim, finish) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const item = held(claim)
        if (item === undefined) return Effect.fail(lost(claim))
        const { upload: _upload, reason: _reason, event: _event, ...rest } = item
        put({
          ...rest,
          status: finish.status,
          finishedAt: now,
          outcome: finish.outcome,
          published: finish.event === undefined,
          ...(finish.reason === undefined ? {} : { reason: finish.reason }),
          ...(finish.event === undefined ? {} : { event: finish.event })
        })
        return Effect.void
      }),
    giveUp: (expected, finish) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const item = items.get(keyOf(expected))
        const unchanged =
          item !== undefined &&
          item.attempts === expected.attempts &&
          (expected.status === "running" ? item.status === "running" && item.owner === expected.owner && item.leaseUntil < now : item.status === "failed")
        if (!unchanged) return Effect.fail(lost(expected))
        const { upload: _upload, event: _event, ...rest } = item
        put({
          ...rest,
          status: "failed",
          finishedAt: now,
          outcome: finish.outcome,
          reason: finish.reason,
          gaveUp: true,
          published: finish.event === undefined,
          ...(finish.event === undefined ? {} : { event: finish.event })
        })
        return Effect.void
      }),
    amendOutcome: (step, outcome) =>
      Effect.sync(() => {
        const item = items.get(keyOf(step))
        if (item !== undefined && !item.published) put({ ...item, outcome })
      }),
    markPublished: (step) =>
      Effect.sync(() => {
        const item = items.get(keyOf(step))
        if (item !== undefined) put({ ...item, published: true })
      }),
    unpublished: (detailType, finishedBefore) =>
      Effect.sync(() =>
        [...items.values()].filter(
          (item) => !item.published && item.event?.detailType === detailType && item.finishedAt !== undefined && item.finishedAt < finishedBefore
        )
      )
  }
  return { items, ledger: shape, layer: Layer.succeed(Ledger, shape) }
}

/** A fresh in-memory ledger as a layer. */
export const MemoryLedger = Layer.sync(Ledger, () => makeMemoryLedger().ledger)
