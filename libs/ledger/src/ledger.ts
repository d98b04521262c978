import { GetItemCommand, UpdateItemCommand, type AttributeValue } from "@aws-sdk/client-dynamodb"
import { marshall, unmarshall } from "@aws-sdk/util-dynamodb"
import { Clock, Context, Effect, Either, Layer, ParseResult, Schema } from "effect"
import { AwsError, DynamoDb, awsCall } from "@backup-actions/aws"
import { ServiceSettings } from "@backup-actions/config"

/** One step of work on one recovery point, e.g. `archive:direct`. */
export interface StepKey {
  readonly recoveryPointArn: string
  readonly action: string
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

export interface StepRecord {
  readonly recoveryPointArn: string
  readonly action: string
  readonly status: StepStatus
  readonly attempts: number
  readonly leaseUntil: number
  readonly startedAt: number
  readonly finishedAt?: number
  readonly upload?: UploadProgress
  /** The outcome (the published event's detail) once finished. */
  readonly outcome?: Record<string, unknown>
  readonly reason?: string
}

/** The step already finished: a replayed or duplicated event must do nothing. */
export class StepAlreadyDone extends Schema.TaggedError<StepAlreadyDone>()("StepAlreadyDone", {
  recoveryPointArn: Schema.String,
  action: Schema.String,
  outcome: Schema.Unknown
}) {}

/** Another worker holds a live lease on the step; the message comes back later. */
export class StepBusy extends Schema.TaggedError<StepBusy>()("StepBusy", {
  recoveryPointArn: Schema.String,
  action: Schema.String,
  leaseUntil: Schema.Number
}) {}

/** A conditional write lost: this worker no longer holds the step. */
export class LeaseLost extends Schema.TaggedError<LeaseLost>()("LeaseLost", {
  recoveryPointArn: Schema.String,
  action: Schema.String
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
  upload: Schema.optionalWith(UploadProgressSchema, { exact: true }),
  outcome: Schema.optionalWith(Schema.Record({ key: Schema.String, value: Schema.Unknown }), { exact: true }),
  reason: Schema.optionalWith(Schema.String, { exact: true })
})

const decodeItem = Schema.decodeUnknownEither(LedgerItem)

const toRecord = (item: Record<string, AttributeValue>): Effect.Effect<StepRecord, AwsError> =>
  Either.match(decodeItem(unmarshall(item)), {
    onLeft: (error) =>
      Effect.fail(
        new AwsError({
          operation: "ledger:decode",
          code: "LedgerItemInvalid",
          message: ParseResult.TreeFormatter.formatErrorSync(error),
          kind: "client"
        })
      ),
    onRight: ({ pk, sk, ...rest }) => Effect.succeed<StepRecord>({ recoveryPointArn: pk, action: sk, ...rest })
  })

const isConditionFailure = (error: AwsError): boolean => error.code === "ConditionalCheckFailedException"

const removeUndefined = { removeUndefinedValues: true, convertClassInstanceToMap: true } as const

export interface LedgerShape {
  /**
   * Takes the step for this worker: a new step, a failed one (retried), or a running one
   * whose lease ran out (its worker died). Returns the record, with upload progress to resume.
   */
  readonly claim: (step: StepKey, leaseMs: number) => Effect.Effect<StepRecord, StepAlreadyDone | StepBusy | AwsError>
  readonly renew: (step: StepKey, leaseMs: number) => Effect.Effect<void, LeaseLost | AwsError>
  readonly saveUpload: (step: StepKey, upload: UploadProgress | undefined) => Effect.Effect<void, LeaseLost | AwsError>
  readonly succeed: (step: StepKey, outcome: Record<string, unknown>) => Effect.Effect<void, LeaseLost | AwsError>
  readonly fail: (step: StepKey, reason: string, outcome: Record<string, unknown>) => Effect.Effect<void, LeaseLost | AwsError>
  readonly get: (step: StepKey) => Effect.Effect<StepRecord | undefined, AwsError>
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

      /** An update that only holds while this worker's step is running. */
      const updateRunning = (step: StepKey, expression: string, values: Record<string, unknown>, names: Record<string, string> = {}) =>
        awsCall("dynamodb:UpdateItem", (abortSignal) =>
          dynamodb.send(
            new UpdateItemCommand({
              TableName: ledgerTable,
              Key: keyOf(step),
              UpdateExpression: expression,
              ConditionExpression: "#status = :running",
              ExpressionAttributeNames: { "#status": "status", ...names },
              ExpressionAttributeValues: marshall({ ":running": "running", ...values }, removeUndefined)
            }),
            { abortSignal }
          )
        ).pipe(
          Effect.asVoid,
          Effect.catchIf(isConditionFailure, () => new LeaseLost({ recoveryPointArn: step.recoveryPointArn, action: step.action }))
        )

      const claim = (step: StepKey, leaseMs: number) =>
        Effect.gen(function* () {
          const now = yield* Clock.currentTimeMillis
          const attempt = awsCall("dynamodb:UpdateItem", (abortSignal) =>
            dynamodb.send(
              new UpdateItemCommand({
                TableName: ledgerTable,
                Key: keyOf(step),
                UpdateExpression:
                  "SET #status = :running, attempts = if_not_exists(attempts, :zero) + :one, leaseUntil = :lease, startedAt = :now REMOVE reason, finishedAt",
                ConditionExpression:
                  "attribute_not_exists(pk) OR #status = :failed OR (#status = :running AND leaseUntil < :now)",
                ExpressionAttributeNames: { "#status": "status" },
                ExpressionAttributeValues: marshall({
                  ":running": "running",
                  ":failed": "failed",
                  ":zero": 0,
                  ":one": 1,
                  ":now": now,
                  ":lease": now + leaseMs
                }),
                ReturnValues: "ALL_NEW"
              }),
              { abortSignal }
            )
          )
          const claimed = yield* attempt.pipe(
            Effect.flatMap((result) => (result.Attributes === undefined ? Effect.succeed(undefined) : toRecord(result.Attributes))),
            Effect.catchIf(isConditionFailure, () => Effect.succeed(undefined))
          )
          if (claimed !== undefined) return claimed
          const current = yield* get(step)
          if (current?.status === "succeeded") {
            return yield* new StepAlreadyDone({ recoveryPointArn: step.recoveryPointArn, action: step.action, outcome: current.outcome })
          }
          return yield* new StepBusy({ recoveryPointArn: step.recoveryPointArn, action: step.action, leaseUntil: current?.leaseUntil ?? 0 })
        })

      return {
        get,
        claim,
        renew: (step, leaseMs) =>
          Effect.flatMap(Clock.currentTimeMillis, (now) => updateRunning(step, "SET leaseUntil = :lease", { ":lease": now + leaseMs })),
        saveUpload: (step, upload) =>
          upload === undefined
            ? updateRunning(step, "REMOVE upload", {})
            : updateRunning(step, "SET upload = :upload", { ":upload": upload }),
        succeed: (step, outcome) =>
          Effect.flatMap(Clock.currentTimeMillis, (now) =>
            updateRunning(step, "SET #status = :done, finishedAt = :now, outcome = :outcome REMOVE upload", {
              ":done": "succeeded",
              ":now": now,
              ":outcome": outcome
            })
          ),
        fail: (step, reason, outcome) =>
          Effect.flatMap(Clock.currentTimeMillis, (now) =>
            updateRunning(step, "SET #status = :failed, finishedAt = :now, reason = :reason, outcome = :outcome", {
              ":failed": "failed",
              ":now": now,
              ":reason": reason,
              ":outcome": outcome
            })
          )
      }
    })
  )
}
