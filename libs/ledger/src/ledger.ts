import { randomUUID } from "node:crypto"
import { GetItemCommand, QueryCommand, UpdateItemCommand, type AttributeValue } from "@aws-sdk/client-dynamodb"
import { marshall, unmarshall } from "@aws-sdk/util-dynamodb"
import { Clock, Context, Effect, Either, Layer, ParseResult, Schema } from "effect"
import { AwsError, DynamoDb, awsCall } from "@backup-actions/aws"
import { LEDGER_OUTBOX_INDEX, ServiceSettings } from "@backup-actions/config"

/** One step of work on one recovery point, e.g. `archive:direct`. */
export interface StepKey {
  readonly recoveryPointArn: string
  readonly action: string
}

/**
 * A worker's hold on a step: the step, the token written by its claim and the attempt it
 * numbers. Every write this worker makes to the step is conditioned on the token, so a worker
 * whose lease lapsed and was taken over can change nothing.
 */
export interface Claim extends StepKey {
  readonly owner: string
  readonly attempt: number
}

export type StepStatus = "running" | "succeeded" | "failed"

/** An open multipart upload and how far it got, so that a restarted worker resumes it. */
export interface UploadProgress {
  readonly bucket: string
  readonly key: string
  readonly uploadId: string
  readonly partSize: number
  /** Parts 1..partsDone are uploaded. */
  readonly partsDone: number
  /** Input bytes consumed by parts 1..partsDone. */
  readonly inputOffset: number
}

/** The last time a worker took over a step whose lease had lapsed. */
export interface Takeover {
  readonly from: string
  readonly at: number
  readonly attempt: number
}

/** The event that announces a finished step, kept with it until it is published (the outbox). */
export interface OutboxEntry {
  readonly detailType: string
  readonly resources: ReadonlyArray<string>
}

export interface StepRecord {
  readonly recoveryPointArn: string
  readonly action: string
  readonly status: StepStatus
  readonly attempts: number
  readonly leaseUntil: number
  readonly startedAt: number
  readonly finishedAt?: number
  readonly owner?: string
  readonly takeovers: number
  readonly lastTakeover?: Takeover
  readonly upload?: UploadProgress
  /** The outcome (the published event's detail) once finished. */
  readonly outcome?: Record<string, unknown>
  readonly reason?: string
  /** What the outcome is announced as; absent for steps that announce nothing. */
  readonly event?: OutboxEntry
  /** False from the moment a step finishes until its outcome event is on the bus. */
  readonly published: boolean
  /** The step ran out of attempts: it stays failed, and its messages go to the DLQ. */
  readonly gaveUp: boolean
}

/** The step already finished (or gave up): a replayed or duplicated event must not run it again. */
export class StepAlreadyDone extends Schema.TaggedError<StepAlreadyDone>()("StepAlreadyDone", {
  recoveryPointArn: Schema.String,
  action: Schema.String,
  record: Schema.Unknown
}) {
  get finished(): StepRecord {
    return this.record as StepRecord
  }
}

/** Another worker holds a live lease on the step; the message comes back later. */
export class StepBusy extends Schema.TaggedError<StepBusy>()("StepBusy", {
  recoveryPointArn: Schema.String,
  action: Schema.String,
  leaseUntil: Schema.Number
}) {}

/** The step used up its attempts (it kept failing, or kept killing its worker); the runtime gives it up. */
export class StepExhausted extends Schema.TaggedError<StepExhausted>()("StepExhausted", {
  recoveryPointArn: Schema.String,
  action: Schema.String,
  record: Schema.Unknown
}) {
  get current(): StepRecord {
    return this.record as StepRecord
  }
}

/** A step that was given up: its event can never be acted on again, so its message goes to the DLQ with the reason. */
export class StepGaveUp extends Schema.TaggedError<StepGaveUp>()("StepGaveUp", {
  recoveryPointArn: Schema.String,
  action: Schema.String,
  reason: Schema.String
}) {}

/** A conditional write lost: this worker no longer holds the step (its lease lapsed and another worker took it). */
export class LeaseLost extends Schema.TaggedError<LeaseLost>()("LeaseLost", {
  recoveryPointArn: Schema.String,
  action: Schema.String
}) {}

/** A ledger item that does not decode as a step: damaged or written by something else. */
export class LedgerItemInvalid extends Schema.TaggedError<LedgerItemInvalid>()("LedgerItemInvalid", {
  key: Schema.String,
  reason: Schema.String
}) {}

const keyOf = (step: StepKey): Record<string, AttributeValue> => marshall({ pk: step.recoveryPointArn, sk: step.action })

const UploadProgressSchema = Schema.Struct({
  bucket: Schema.String,
  key: Schema.String,
  uploadId: Schema.String,
  partSize: Schema.Number,
  partsDone: Schema.Number,
  inputOffset: Schema.Number
})

/** A ledger item as stored; decoding it (rather than trusting it) keeps a damaged item from passing as a step. */
const LedgerItem = Schema.Struct({
  pk: Schema.String,
  sk: Schema.String,
  status: Schema.Literal("running", "succeeded", "failed"),
  attempts: Schema.optionalWith(Schema.Number, { default: () => 0 }),
  leaseUntil: Schema.optionalWith(Schema.Number, { default: () => 0 }),
  startedAt: Schema.optionalWith(Schema.Number, { default: () => 0 }),
  finishedAt: Schema.optionalWith(Schema.Number, { exact: true }),
  owner: Schema.optionalWith(Schema.String, { exact: true }),
  takeovers: Schema.optionalWith(Schema.Number, { default: () => 0 }),
  lastTakeover: Schema.optionalWith(Schema.Struct({ from: Schema.String, at: Schema.Number, attempt: Schema.Number }), { exact: true }),
  upload: Schema.optionalWith(UploadProgressSchema, { exact: true }),
  outcome: Schema.optionalWith(Schema.Record({ key: Schema.String, value: Schema.Unknown }), { exact: true }),
  reason: Schema.optionalWith(Schema.String, { exact: true }),
  event: Schema.optionalWith(Schema.Struct({ detailType: Schema.String, resources: Schema.Array(Schema.String) }), { exact: true }),
  // Items written before the outbox existed count as published: their events went out then.
  published: Schema.optionalWith(Schema.Boolean, { default: () => true }),
  gaveUp: Schema.optionalWith(Schema.Boolean, { default: () => false })
})

const decodeItem = Schema.decodeUnknownEither(LedgerItem)

const toRecord = (item: Record<string, AttributeValue>): Effect.Effect<StepRecord, LedgerItemInvalid> => {
  const plain = unmarshall(item)
  return Either.match(decodeItem(plain), {
    onLeft: (error) =>
      Effect.fail(new LedgerItemInvalid({ key: `${String(plain["pk"])} ${String(plain["sk"])}`, reason: ParseResult.TreeFormatter.formatErrorSync(error) })),
    onRight: ({ pk, sk, ...rest }) => Effect.succeed<StepRecord>({ recoveryPointArn: pk, action: sk, ...rest })
  })
}

const isConditionFailure = (error: AwsError): boolean => error.code === "ConditionalCheckFailedException"

const removeUndefined = { removeUndefinedValues: true, convertClassInstanceToMap: true } as const

/** A takeover, when the step this claim replaces was still running (its worker died or stalled). */
export const takeoverOf = (old: StepRecord | undefined, now: number, attempt: number): Takeover | undefined =>
  old?.status === "running" ? { from: old.owner ?? "unknown", at: now, attempt } : undefined

/** The record a claim leaves: running under its owner, the previous attempt's upload kept to resume. */
export const claimedRecord = (step: StepKey, old: StepRecord | undefined, claim: { readonly owner: string; readonly now: number; readonly leaseMs: number }): StepRecord => {
  const attempts = (old?.attempts ?? 0) + 1
  const takeover = takeoverOf(old, claim.now, attempts)
  const lastTakeover = takeover ?? old?.lastTakeover
  return {
    recoveryPointArn: step.recoveryPointArn,
    action: step.action,
    status: "running",
    attempts,
    leaseUntil: claim.now + claim.leaseMs,
    startedAt: claim.now,
    owner: claim.owner,
    takeovers: (old?.takeovers ?? 0) + (takeover === undefined ? 0 : 1),
    published: true,
    gaveUp: false,
    ...(lastTakeover === undefined ? {} : { lastTakeover }),
    ...(old?.upload === undefined ? {} : { upload: old.upload })
  }
}

/** Whether a claim may take the step as it is: new, failed, or its worker's lease lapsed; and attempts left. */
export const isClaimable = (old: StepRecord | undefined, now: number, maxAttempts: number): boolean =>
  old === undefined || (old.attempts < maxAttempts && (old.status === "failed" || (old.status === "running" && old.leaseUntil < now)))

/** Why a claim could not take the step: finished, out of attempts, or running under another worker's live lease. */
export const refusalOf = (step: StepKey, current: StepRecord, now: number, maxAttempts: number): StepAlreadyDone | StepExhausted | StepBusy =>
  current.status === "succeeded" || current.gaveUp
    ? new StepAlreadyDone({ ...step, record: current })
    : current.attempts >= maxAttempts && (current.status === "failed" || current.leaseUntil < now)
      ? new StepExhausted({ ...step, record: current })
      : new StepBusy({ ...step, leaseUntil: current.leaseUntil })

/** How a step ended, as the runtime records it. */
export interface Finish {
  readonly status: "succeeded" | "failed"
  readonly outcome: Record<string, unknown>
  readonly reason?: string
  /** The event that announces it; none for a step that announces nothing. */
  readonly event?: OutboxEntry
}

export interface ClaimOptions {
  readonly leaseMs: number
  /** Claims a step may have in all; the next one finds it exhausted. */
  readonly maxAttempts: number
}

export interface LedgerShape {
  /**
   * Takes the step for this worker: a new step, a failed one (retried), or a running one
   * whose lease ran out (its worker died: a takeover, recorded). Returns the claim (the token
   * every later write is conditioned on) and the record, with upload progress to resume.
   */
  readonly claim: (
    step: StepKey,
    options: ClaimOptions
  ) => Effect.Effect<{ readonly claim: Claim; readonly record: StepRecord }, StepAlreadyDone | StepBusy | StepExhausted | AwsError | LedgerItemInvalid>
  /** Extends this worker's lease; returns the new expiry. */
  readonly renew: (claim: Claim, leaseMs: number) => Effect.Effect<number, LeaseLost | AwsError>
  readonly saveUpload: (claim: Claim, upload: UploadProgress | undefined) => Effect.Effect<void, LeaseLost | AwsError>
  /** Records how the step ended, with its outcome event unpublished, in one write. */
  readonly finish: (claim: Claim, finish: Finish) => Effect.Effect<void, LeaseLost | AwsError>
  /**
   * Ends an exhausted step as failed for good. `expected` is the record the claim found: the
   * write holds only while the step is still as it was then.
   */
  readonly giveUp: (expected: StepRecord, finish: Finish & { readonly reason: string }) => Effect.Effect<void, LeaseLost | AwsError>
  /** Replaces the outcome of a finished step whose event is not published yet. */
  readonly amendOutcome: (step: StepKey, outcome: Record<string, unknown>) => Effect.Effect<void, AwsError>
  /** The outcome event is on the bus. */
  readonly markPublished: (step: StepKey) => Effect.Effect<void, AwsError>
  readonly get: (step: StepKey) => Effect.Effect<StepRecord | undefined, AwsError | LedgerItemInvalid>
  /** Finished steps of this detail-type whose event is still unpublished, finished before `finishedBefore`. */
  readonly unpublished: (detailType: string, finishedBefore: number) => Effect.Effect<ReadonlyArray<StepRecord>, AwsError | LedgerItemInvalid>
}

/** The ledger: one DynamoDB item per recovery point and action; every change is a conditional write. */
export class Ledger extends Context.Tag("backup-actions/Ledger")<Ledger, LedgerShape>() {
  static readonly Live = Layer.effect(
    Ledger,
    Effect.gen(function* () {
      const dynamodb = yield* DynamoDb
      const { ledgerTable } = yield* ServiceSettings

      const get = (step: StepKey) =>
        awsCall("dynamodb:GetItem", (abortSignal) =>
          dynamodb.send(new GetItemCommand({ TableName: ledgerTable, Key: keyOf(step), ConsistentRead: true }), { abortSignal })
        ).pipe(Effect.flatMap((result) => (result.Item === undefined ? Effect.succeed(undefined) : toRecord(result.Item))))

      const update = (step: StepKey, input: { expression: string; condition: string; values: Record<string, unknown>; names?: Record<string, string> }) =>
        awsCall("dynamodb:UpdateItem", (abortSignal) =>
          dynamodb.send(
            new UpdateItemCommand({
              TableName: ledgerTable,
              Key: keyOf(step),
              UpdateExpression: input.expression,
              ConditionExpression: input.condition,
              // DynamoDB refuses names that the expressions do not use.
              ExpressionAttributeNames: `${input.expression} ${input.condition}`.includes("#status") ? { "#status": "status", ...input.names } : input.names,
              ExpressionAttributeValues: marshall(input.values, removeUndefined)
            }),
            { abortSignal }
          )
        ).pipe(Effect.asVoid)

      /** An update that only holds while this worker's claim is the step's claim. */
      const updateHeld = (claim: Claim, expression: string, values: Record<string, unknown>) =>
        update(claim, {
          expression,
          condition: "#status = :running AND #owner = :owner",
          values: { ":running": "running", ":owner": claim.owner, ...values },
          names: { "#owner": "owner" }
        }).pipe(Effect.catchIf(isConditionFailure, () => new LeaseLost({ recoveryPointArn: claim.recoveryPointArn, action: claim.action })))

      /**
       * The write that finishes a step: status, outcome and reason, and, for a step that
       * announces its outcome, the event kept unpublished in the outbox index until it is on the bus.
       */
      const finishWrite = (now: number, finish: Finish, extra: { readonly set?: string; readonly values?: Record<string, unknown> } = {}) => {
        const sets = ["#status = :finished", "finishedAt = :now", "outcome = :outcome", "published = :published"]
        const removes = ["upload"]
        if (finish.reason === undefined) removes.push("reason")
        else sets.push("reason = :reason")
        if (finish.event === undefined) removes.push("event", "outbox")
        else sets.push("event = :event", "outbox = :outbox")
        if (extra.set !== undefined) sets.push(extra.set)
        return {
          expression: `SET ${sets.join(", ")} REMOVE ${removes.join(", ")}`,
          values: {
            ":finished": finish.status,
            ":now": now,
            ":outcome": finish.outcome,
            ":published": finish.event === undefined,
            ...(finish.reason === undefined ? {} : { ":reason": finish.reason }),
            ...(finish.event === undefined ? {} : { ":event": finish.event, ":outbox": finish.event.detailType }),
            ...extra.values
          }
        }
      }

      const claim = (step: StepKey, options: ClaimOptions) =>
        Effect.gen(function* () {
          const now = yield* Clock.currentTimeMillis
          const owner = randomUUID()
          const attempt = awsCall("dynamodb:UpdateItem", (abortSignal) =>
            dynamodb.send(
              new UpdateItemCommand({
                TableName: ledgerTable,
                Key: keyOf(step),
                UpdateExpression:
                  "SET #status = :running, attempts = if_not_exists(attempts, :zero) + :one, leaseUntil = :lease, startedAt = :now, #owner = :owner, published = :true " +
                  "REMOVE reason, finishedAt, outbox, event",
                ConditionExpression:
                  "attribute_not_exists(pk) OR (attempts < :max AND (#status = :failed OR (#status = :running AND leaseUntil < :now)))",
                ExpressionAttributeNames: { "#status": "status", "#owner": "owner" },
                ExpressionAttributeValues: marshall({
                  ":running": "running",
                  ":failed": "failed",
                  ":zero": 0,
                  ":one": 1,
                  ":now": now,
                  ":lease": now + options.leaseMs,
                  ":owner": owner,
                  ":max": options.maxAttempts,
                  ":true": true
                }),
                ReturnValues: "ALL_OLD"
              }),
              { abortSignal }
            )
          )
          const previous = yield* attempt.pipe(
            Effect.map((result) => ({ won: true as const, old: result.Attributes })),
            Effect.catchIf(isConditionFailure, () => Effect.succeed({ won: false as const, old: undefined }))
          )
          if (previous.won) {
            const old = previous.old === undefined ? undefined : yield* toRecord(previous.old)
            const record = claimedRecord(step, old, { owner, now, leaseMs: options.leaseMs })
            const claimed: Claim = { ...step, owner, attempt: record.attempts }
            if (record.lastTakeover !== undefined && record.lastTakeover.attempt === record.attempts) {
              // The step's worker died or stalled: say so on the step, where an operator looks.
              yield* updateHeld(claimed, "SET takeovers = if_not_exists(takeovers, :zero) + :one, lastTakeover = :takeover", {
                ":zero": 0,
                ":one": 1,
                ":takeover": record.lastTakeover
              }).pipe(Effect.catchTag("LeaseLost", () => Effect.void))
            }
            return { claim: claimed, record }
          }
          const current = yield* get(step)
          if (current === undefined) {
            return yield* new StepBusy({ recoveryPointArn: step.recoveryPointArn, action: step.action, leaseUntil: 0 })
          }
          return yield* refusalOf(step, current, now, options.maxAttempts)
        })

      return {
        get,
        claim,
        renew: (held, leaseMs) =>
          Effect.flatMap(Clock.currentTimeMillis, (now) =>
            updateHeld(held, "SET leaseUntil = :lease", { ":lease": now + leaseMs }).pipe(Effect.as(now + leaseMs))
          ),
        saveUpload: (held, upload) =>
          upload === undefined ? updateHeld(held, "REMOVE upload", {}) : updateHeld(held, "SET upload = :upload", { ":upload": upload }),
        finish: (held, finish) =>
          Effect.flatMap(Clock.currentTimeMillis, (now) => {
            const write = finishWrite(now, finish)
            return updateHeld(held, write.expression, write.values)
          }),
        giveUp: (expected, finish) =>
          Effect.flatMap(Clock.currentTimeMillis, (now) => {
            // Only while the step is exactly as the claim found it: the same attempt and, if it
            // was running, the same dead owner with its lease still lapsed.
            const wasRunning = expected.status === "running"
            const write = finishWrite(now, finish, { set: "gaveUp = :true", values: { ":true": true } })
            return update(expected, {
              expression: write.expression,
              condition: wasRunning
                ? "#status = :running AND attempts = :attempts AND #owner = :owner AND leaseUntil < :now"
                : "#status = :failedStatus AND attempts = :attempts",
              values: {
                ...write.values,
                ":attempts": expected.attempts,
                ...(wasRunning ? { ":running": "running", ":owner": expected.owner ?? "" } : { ":failedStatus": "failed" })
              },
              names: wasRunning ? { "#owner": "owner" } : {}
            }).pipe(Effect.catchIf(isConditionFailure, () => new LeaseLost({ recoveryPointArn: expected.recoveryPointArn, action: expected.action })))
          }),
        amendOutcome: (step, outcome) =>
          update(step, {
            expression: "SET outcome = :outcome",
            condition: "published = :false",
            values: { ":outcome": outcome, ":false": false }
          }).pipe(Effect.catchIf(isConditionFailure, () => Effect.void)),
        markPublished: (step) =>
          update(step, {
            expression: "SET published = :true REMOVE outbox",
            condition: "attribute_exists(pk)",
            values: { ":true": true }
          }),
        unpublished: (detailType, finishedBefore) =>
          Effect.gen(function* () {
            const records: Array<StepRecord> = []
            let start: Record<string, AttributeValue> | undefined
            do {
              const page = yield* awsCall("dynamodb:Query", (abortSignal) =>
                dynamodb.send(
                  new QueryCommand({
                    TableName: ledgerTable,
                    IndexName: LEDGER_OUTBOX_INDEX.name,
                    KeyConditionExpression: "#outbox = :type AND #finishedAt < :before",
                    ExpressionAttributeNames: { "#outbox": LEDGER_OUTBOX_INDEX.partitionKey, "#finishedAt": LEDGER_OUTBOX_INDEX.sortKey },
                    ExpressionAttributeValues: marshall({ ":type": detailType, ":before": finishedBefore }),
                    ExclusiveStartKey: start
                  }),
                  { abortSignal }
                )
              )
              for (const item of page.Items ?? []) records.push(yield* toRecord(item))
              start = page.LastEvaluatedKey
            } while (start !== undefined)
            return records
          })
      }
    })
  )
}
