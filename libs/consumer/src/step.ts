import { Clock, Duration, Effect, Either, Option, Schedule } from "effect"
import { STEP_POINTS, failpoint, type AwsError, type InjectedFault } from "@backup-actions/aws"
import { ServiceSettings } from "@backup-actions/config"
import type { Contract, EventDecodeError } from "@backup-actions/contracts"
import {
  LeaseLost,
  Ledger,
  LedgerItemInvalid,
  StepGaveUp,
  type Claim,
  type Finish,
  type OutboxEntry,
  type StepBusy,
  type StepKey,
  type StepRecord,
  type StepResult
} from "@backup-actions/ledger"
import { Publisher, type PublishFailed } from "./publisher"

/** What a worker holds while it runs a step: its claim (the fence) and the record it found. */
export interface ClaimedStep {
  readonly claim: Claim
  readonly record: StepRecord
}

/**
 * Keeps this worker's lease alive while its work runs, and fails with LeaseLost, which
 * interrupts the work, as soon as the claim is gone: a renewal refused (another worker took
 * the step over), or renewals failing until the lease this worker last confirmed has lapsed.
 */
const holdLease = (claim: Claim, leaseUntil: number, leaseMs: number) =>
  Effect.gen(function* () {
    const ledger = yield* Ledger
    const every = Duration.millis(Math.max(200, Math.floor(leaseMs / 3)))
    let confirmedUntil = leaseUntil
    const renewOnce = Effect.gen(function* () {
      const renewed = yield* Effect.either(ledger.renew(claim, leaseMs))
      if (Either.isRight(renewed)) {
        confirmedUntil = renewed.right
        return
      }
      if (renewed.left._tag === "LeaseLost") return yield* renewed.left
      const now = yield* Clock.currentTimeMillis
      if (now >= confirmedUntil) {
        yield* Effect.logError(`lease of ${claim.action} lapsed while renewals failed (${renewed.left.message}); stopping the work`)
        return yield* new LeaseLost({ recoveryPointArn: claim.recoveryPointArn, action: claim.action })
      }
      yield* Effect.logWarning(`lease renewal failed: ${renewed.left.message}`)
    })
    return yield* renewOnce.pipe(Effect.delay(every), Effect.forever)
  })

export type StepRuntimeError = StepBusy | StepGaveUp | LeaseLost | AwsError | LedgerItemInvalid | InjectedFault

/**
 * The fenced core of every step: claims it (new, failed, or a dead worker's), runs the work
 * while holding the lease, and records how it ended in one write conditioned on the claim.
 * A finished step does nothing and returns its record. A step out of attempts is given up:
 * `gaveUp` makes its final outcome, which is recorded, and the caller learns of it.
 */
export const runFenced = <A extends Record<string, unknown>, E, R>(
  step: StepKey,
  options: {
    readonly event?: OutboxEntry
    readonly gaveUp: (reason: string, record: StepRecord) => A
  },
  work: (claimed: ClaimedStep) => Effect.Effect<StepResult<A>, E, R>
): Effect.Effect<
  { readonly _tag: "Ran"; readonly result: StepResult<A> } | { readonly _tag: "Finished"; readonly record: StepRecord },
  E | StepRuntimeError,
  R | Ledger | ServiceSettings
> =>
  Effect.gen(function* () {
    const ledger = yield* Ledger
    const settings = yield* ServiceSettings
    const leaseMs = settings.stepLeaseSeconds * 1000
    const maxAttempts = settings.stepMaxAttempts
    const claimed = yield* ledger.claim(step, { leaseMs, maxAttempts }).pipe(
      Effect.map((held) => Either.right<ClaimedStep>(held)),
      Effect.catchTags({
        StepAlreadyDone: (done) => Effect.succeed(Either.left<StepRecord>(done.finished)),
        StepExhausted: (exhausted) => Effect.map(giveUp(exhausted.current, maxAttempts, options), Either.left)
      })
    )
    if (Either.isLeft(claimed)) return { _tag: "Finished" as const, record: claimed.left }
    const { claim, record } = claimed.right
    if (record.lastTakeover !== undefined && record.lastTakeover.attempt === claim.attempt) {
      yield* Effect.logWarning(`${step.action} of ${step.recoveryPointArn}: took over from worker ${record.lastTakeover.from}, whose lease lapsed (attempt ${claim.attempt} of ${maxAttempts})`)
    } else if (claim.attempt > 1) {
      yield* Effect.logInfo(`${step.action} of ${step.recoveryPointArn}: attempt ${claim.attempt} of ${maxAttempts}`)
    }
    yield* failpoint(STEP_POINTS.afterClaim)
    const result = yield* Effect.raceFirst(work(claimed.right), holdLease(claim, record.leaseUntil, leaseMs))
    yield* failpoint(STEP_POINTS.afterWork)
    const finish: Finish = {
      status: result._tag === "Succeeded" ? "succeeded" : "failed",
      outcome: result.outcome,
      ...(result._tag === "Failed" ? { reason: result.reason } : {}),
      ...(options.event === undefined ? {} : { event: options.event })
    }
    yield* ledger.finish(claim, finish)
    return { _tag: "Ran" as const, result }
  })

/** Ends an exhausted step as failed for good, with the reason and the final outcome; returns the record as written. */
const giveUp = <A extends Record<string, unknown>>(
  current: StepRecord,
  maxAttempts: number,
  options: { readonly event?: OutboxEntry; readonly gaveUp: (reason: string, record: StepRecord) => A }
) =>
  Effect.gen(function* () {
    const ledger = yield* Ledger
    const reason = `gave up after ${maxAttempts} attempts: ${current.status === "running" ? "the worker died" : (current.reason ?? "it failed")}`
    // A failed step's own outcome was announced (or waits in the outbox): keep it. A step whose
    // worker died has none: the give-up is its outcome.
    const keepOutcome = current.status === "failed" && current.outcome !== undefined
    const finish: Finish & { readonly reason: string } = keepOutcome
      ? { status: "failed", outcome: current.outcome ?? {}, reason, ...(current.published || current.event === undefined ? {} : { event: current.event }) }
      : { status: "failed", outcome: options.gaveUp(reason, current), reason, ...(options.event === undefined ? {} : { event: options.event }) }
    yield* ledger.giveUp(current, finish)
    yield* Effect.logError(`${current.action} of ${current.recoveryPointArn}: ${reason}`)
    const now = yield* Clock.currentTimeMillis
    const record: StepRecord = {
      ...current,
      status: "failed",
      finishedAt: now,
      outcome: finish.outcome,
      reason,
      gaveUp: true,
      published: finish.event === undefined,
      ...(finish.event === undefined ? {} : { event: finish.event })
    }
    return record
  })

/** What a step announces: the contract of its one event type, the event's resources, and its give-up outcome. */
export interface StepSpec<S extends string, D extends string, A extends Record<string, unknown>, AE = never, AR = never> {
  readonly step: StepKey
  readonly contract: Contract<S, D, A>
  readonly resources: ReadonlyArray<string>
  /** The failed outcome of a step given up after its last attempt. */
  readonly gaveUp: (reason: string) => A
  /**
   * Runs once a success is recorded and before it is announced, e.g. the deletion of the
   * source, and returns the outcome to announce. It runs again on a redelivery until the
   * outcome is published, so it must be idempotent (a ledger step of its own).
   */
  readonly afterSuccess?: (outcome: A) => Effect.Effect<A, AE, AR>
}

/**
 * A finished step's outcome as the ledger kept it, read back as its contract's detail. One that
 * does not read back is a damaged ledger item, not a malformed event: nothing on the bus is wrong.
 */
const storedOutcome = <S extends string, D extends string, A>(contract: Contract<S, D, A>, record: StepRecord) =>
  contract.decodeDetail(record.outcome ?? {}).pipe(
    Effect.mapError(
      (error) =>
        new LedgerItemInvalid({ key: `${record.recoveryPointArn} ${record.action}`, reason: `its outcome is not a "${contract.detailType}" detail: ${error.reason}` })
    )
  )

/**
 * Announces a finished step from the ledger's outbox: runs what follows a success, keeps the
 * final outcome with the step, publishes it, and marks it published. A crash or a refused
 * PutEvents anywhere here leaves the outcome in the outbox, and the next delivery of the event
 * (or the outbox relay) announces it; nothing announces a step twice unless a crash falls
 * between PutEvents' answer and the mark.
 */
const announce = <S extends string, D extends string, A extends Record<string, unknown>, AE, AR>(
  spec: StepSpec<S, D, A, AE, AR>,
  status: "succeeded" | "failed",
  outcome: A
) =>
  Effect.gen(function* () {
    const ledger = yield* Ledger
    const publisher = yield* Publisher
    let final = outcome
    if (status === "succeeded" && spec.afterSuccess !== undefined) {
      final = yield* spec.afterSuccess(outcome)
      if (final !== outcome) yield* ledger.amendOutcome(spec.step, final)
    }
    yield* publisher.publish(spec.contract, final, spec.resources)
    yield* ledger.markPublished(spec.step)
    return final
  })

/**
 * The one way a service runs a step whose outcome is an event: claim, run, record, publish.
 * A finished step whose event is still in the outbox is announced now; one already announced
 * does nothing (None). A step out of attempts ends as failed with `gave up after N attempts: …`,
 * is announced, and fails with StepGaveUp, which sends its message to the DLQ with that reason.
 */
export const runStep = <S extends string, D extends string, A extends Record<string, unknown>, E, R, AE = never, AR = never>(
  spec: StepSpec<S, D, A, AE, AR>,
  work: (claimed: ClaimedStep) => Effect.Effect<StepResult<A>, E, R>
): Effect.Effect<Option.Option<StepResult<A>>, E | AE | StepRuntimeError | PublishFailed | EventDecodeError, R | AR | Ledger | Publisher | ServiceSettings> =>
  Effect.gen(function* () {
    const event: OutboxEntry = { detailType: spec.contract.detailType, resources: [...spec.resources] }
    const ran = yield* runFenced(spec.step, { event, gaveUp: (reason) => spec.gaveUp(reason) }, work)
    if (ran._tag === "Ran") {
      yield* failpoint(STEP_POINTS.afterRecord)
      const outcome = yield* announce(spec, ran.result._tag === "Succeeded" ? "succeeded" : "failed", ran.result.outcome)
      return Option.some<StepResult<A>>({ ...ran.result, outcome })
    }
    const record = ran.record
    if (!record.published && record.status !== "running") {
      yield* Effect.logInfo(`${spec.step.action} of ${spec.step.recoveryPointArn} finished but was not announced; announcing it from the ledger`)
      const stored = yield* storedOutcome(spec.contract, record)
      yield* announce(spec, record.status, stored)
    }
    if (record.gaveUp) {
      return yield* new StepGaveUp({ recoveryPointArn: spec.step.recoveryPointArn, action: spec.step.action, reason: record.reason ?? "gave up" })
    }
    yield* Effect.logInfo(`${spec.step.action} of ${spec.step.recoveryPointArn} already finished; nothing to do`)
    return Option.none()
  })

/** How often the outbox relay looks for outcomes that no delivery announced, and how old they must be. */
export const OUTBOX_RELAY = { every: Duration.minutes(5), olderThan: Duration.minutes(2) } as const

/**
 * Announces every finished step of this contract whose outcome is still in the outbox after
 * `olderThan` (its worker died between recording and publishing, and no delivery came back).
 * A succeeded step's `afterSuccess` is not rerun here: the next delivery of its event does that.
 */
export const relayOutbox = <S extends string, D extends string, A extends Record<string, unknown>>(
  contract: Contract<S, D, A>,
  olderThan: Duration.DurationInput = OUTBOX_RELAY.olderThan
) =>
  Effect.gen(function* () {
    const ledger = yield* Ledger
    const publisher = yield* Publisher
    const now = yield* Clock.currentTimeMillis
    const waiting = yield* ledger.unpublished(contract.detailType, now - Duration.toMillis(Duration.decode(olderThan)))
    let published = 0
    for (const record of waiting) {
      const outcome = yield* storedOutcome(contract, record)
      yield* publisher.publish(contract, outcome, record.event?.resources ?? [])
      yield* ledger.markPublished(record)
      published += 1
    }
    if (published > 0) yield* Effect.logWarning(`outbox relay announced ${published} ${contract.detailType} outcome(s) that no delivery had announced`)
    return published
  })

/** The relay as a service's background work: every few minutes, failures logged and tried again next time. */
export const outboxRelay = <S extends string, D extends string, A extends Record<string, unknown>>(contract: Contract<S, D, A>) =>
  relayOutbox(contract).pipe(
    Effect.catchAll((error) => Effect.logWarning(`outbox relay: ${error._tag}: ${error.message}`)),
    Effect.repeat(Schedule.spaced(OUTBOX_RELAY.every)),
    Effect.asVoid
  )
