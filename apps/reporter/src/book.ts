import {
  GetItemCommand,
  QueryCommand,
  TransactWriteItemsCommand,
  UpdateItemCommand,
  type AttributeValue
} from "@aws-sdk/client-dynamodb"
import { marshall, unmarshall } from "@aws-sdk/util-dynamodb"
import { Chunk, Context, Effect, Layer, Option, Schema, Stream } from "effect"
import { AwsError, DynamoDb, awsCall } from "@backup-actions/aws"
import { ServiceSettings } from "@backup-actions/config"
import { ReportEntry } from "@backup-actions/reports"

/** The UTC day (yyyy-mm-dd) of a time in milliseconds. */
export const dayOf = (millis: number): string => new Date(millis).toISOString().slice(0, 10)

/** Every UTC day from the one holding `fromMs` to the one holding `toMs`, at most `limit` of them. */
export const daysBetween = (fromMs: number, toMs: number, limit = 31): ReadonlyArray<string> => {
  const dayMs = 86_400_000
  const first = Math.max(Math.floor(fromMs / dayMs), Math.floor(toMs / dayMs) - limit + 1)
  const last = Math.floor(toMs / dayMs)
  return Array.from({ length: Math.max(0, last - first + 1) }, (_, index) => dayOf((first + index) * dayMs))
}

/** A recorded entry: the report row and when the reporter recorded it. */
export interface RecordedEntry {
  readonly entry: ReportEntry
  readonly recordedAt: number
}

/** What recording an outcome did. */
export interface Recording {
  /** False when the ledger already held this outcome or a newer one (a replay or a duplicate). */
  readonly isNew: boolean
  /** A failure nobody has been told about yet (also after a crash between recording and notifying). */
  readonly needsNotification: boolean
}

/** Where run reports start and end: the reporter's own bookkeeping. */
export interface RunState {
  readonly lastRecordedAt: number
  readonly lastReportedAt: Option.Option<number>
  /** When the oldest outcome that no run report covers yet was recorded. */
  readonly pendingSince: Option.Option<number>
}

const latestKey = (idempotencyKey: string) => ({ pk: `outcome#${idempotencyKey}`, sk: "latest" })
const dayKey = (day: string, idempotencyKey: string) => ({ pk: `report#${day}`, sk: idempotencyKey })
const RUN_STATE_KEY = { pk: "report#state", sk: "run" }

const StoredEntry = Schema.Struct({ entry: ReportEntry, recordedAt: Schema.Number })
const decodeStored = Schema.decodeUnknown(StoredEntry)
const encodeEntry = Schema.encodeSync(ReportEntry)

const LatestItem = Schema.Struct({
  time: Schema.String,
  status: Schema.String,
  notified: Schema.optional(Schema.Boolean)
})
const decodeLatest = Schema.decodeUnknown(LatestItem)

const RunStateItem = Schema.Struct({
  lastRecordedAt: Schema.optional(Schema.Number),
  lastReportedAt: Schema.optional(Schema.Number),
  pendingSince: Schema.optional(Schema.Number)
})
const decodeRunState = Schema.decodeUnknown(RunStateItem)

/** The stored item could not be read back as what this build writes. */
export class CorruptBookEntry extends Schema.TaggedError<CorruptBookEntry>()("CorruptBookEntry", {
  key: Schema.String,
  reason: Schema.String
}) {}

const isLostRace = (error: AwsError): boolean => error.code === "TransactionCanceledException" || error.kind === "conflict"

export interface OutcomeBookShape {
  /**
   * Records an outcome once: the day's row and the newest-outcome marker are written together,
   * and only when this outcome is newer than what is there, so a replayed event changes nothing
   * while a re-run that succeeded after a failure replaces it.
   */
  readonly record: (entry: ReportEntry, recordedAt: number) => Effect.Effect<Recording, AwsError | CorruptBookEntry>
  /** Notes that the failure of this outcome was announced. */
  readonly markNotified: (entry: ReportEntry) => Effect.Effect<void, AwsError>
  /** The entries recorded in the given days, with a recording time in (afterMs, untilMs]. */
  readonly entries: (
    days: ReadonlyArray<string>,
    window?: { readonly afterMs: number; readonly untilMs: number }
  ) => Effect.Effect<ReadonlyArray<RecordedEntry>, AwsError | CorruptBookEntry>
  readonly runState: Effect.Effect<RunState, AwsError | CorruptBookEntry>
  /** Moves the run's last recording time forward (never back), and starts the pending span if none is open. */
  readonly noteRecorded: (recordedAt: number) => Effect.Effect<void, AwsError>
  /**
   * Claims the run ending at `untilMs`; false when another worker already reported it or a
   * later one. With outcomes after `untilMs` still pending, their span starts at `untilMs`.
   */
  readonly claimRun: (untilMs: number, options: { readonly stillPending: boolean }) => Effect.Effect<boolean, AwsError>
}

/** The reporter's record of outcomes, in the ledger table beside the steps. */
export class OutcomeBook extends Context.Tag("backup-actions/OutcomeBook")<OutcomeBook, OutcomeBookShape>() {
  static readonly Live = Layer.effect(
    OutcomeBook,
    Effect.gen(function* () {
      const dynamodb = yield* DynamoDb
      const { ledgerTable } = yield* ServiceSettings

      const readLatest = (entry: ReportEntry) =>
        Effect.gen(function* () {
          const got = yield* awsCall("dynamodb:GetItem", (abortSignal) =>
            dynamodb.send(
              new GetItemCommand({ TableName: ledgerTable, Key: marshall(latestKey(entry.idempotencyKey)), ConsistentRead: true }),
              { abortSignal }
            )
          )
          if (got.Item === undefined) return Option.none()
          const latest = yield* decodeLatest(unmarshall(got.Item)).pipe(
            Effect.mapError((error) => new CorruptBookEntry({ key: entry.idempotencyKey, reason: error.message }))
          )
          return Option.some(latest)
        })

      const record: OutcomeBookShape["record"] = (entry, recordedAt) =>
        Effect.gen(function* () {
          const day = dayOf(recordedAt)
          const written = yield* awsCall("dynamodb:TransactWriteItems", (abortSignal) =>
            dynamodb.send(
              new TransactWriteItemsCommand({
                TransactItems: [
                  {
                    Put: {
                      TableName: ledgerTable,
                      Item: marshall({ ...latestKey(entry.idempotencyKey), time: entry.time, status: entry.status, day, notified: false }),
                      ConditionExpression: "attribute_not_exists(pk) OR #time < :time",
                      ExpressionAttributeNames: { "#time": "time" },
                      ExpressionAttributeValues: { ":time": { S: entry.time } }
                    }
                  },
                  {
                    Put: {
                      TableName: ledgerTable,
                      Item: marshall({ ...dayKey(day, entry.idempotencyKey), entry: encodeEntry(entry), recordedAt }, { removeUndefinedValues: true })
                    }
                  }
                ]
              }),
              { abortSignal }
            )
          ).pipe(
            Effect.as(true),
            Effect.catchIf(isLostRace, () => Effect.succeed(false))
          )
          if (entry.status !== "failed") return { isNew: written, needsNotification: false }
          const latest = yield* readLatest(entry)
          const needsNotification = Option.match(latest, {
            onNone: () => false,
            onSome: (item) => item.time === entry.time && item.status === "failed" && item.notified !== true
          })
          return { isNew: written, needsNotification }
        })

      const markNotified: OutcomeBookShape["markNotified"] = (entry) =>
        awsCall("dynamodb:UpdateItem", (abortSignal) =>
          dynamodb.send(
            new UpdateItemCommand({
              TableName: ledgerTable,
              Key: marshall(latestKey(entry.idempotencyKey)),
              UpdateExpression: "SET notified = :yes",
              ConditionExpression: "#time = :time",
              ExpressionAttributeNames: { "#time": "time" },
              ExpressionAttributeValues: { ":yes": { BOOL: true }, ":time": { S: entry.time } }
            }),
            { abortSignal }
          )
        ).pipe(Effect.asVoid, Effect.catchIf(isLostRace, () => Effect.void))

      const dayItems = (day: string, window: { readonly afterMs: number; readonly untilMs: number } | undefined) =>
        Stream.paginateChunkEffect(Option.none<Record<string, AttributeValue>>(), (startKey) =>
          awsCall("dynamodb:Query", (abortSignal) =>
            dynamodb.send(
              new QueryCommand({
                TableName: ledgerTable,
                KeyConditionExpression: "pk = :pk",
                ...(window === undefined
                  ? { ExpressionAttributeValues: { ":pk": { S: `report#${day}` } } }
                  : {
                      FilterExpression: "recordedAt > :after AND recordedAt <= :until",
                      ExpressionAttributeValues: {
                        ":pk": { S: `report#${day}` },
                        ":after": { N: String(window.afterMs) },
                        ":until": { N: String(window.untilMs) }
                      }
                    }),
                ConsistentRead: true,
                ...(Option.isSome(startKey) ? { ExclusiveStartKey: startKey.value } : {})
              }),
              { abortSignal }
            )
          ).pipe(
            Effect.map((page) => [
              Chunk.fromIterable(page.Items ?? []),
              page.LastEvaluatedKey === undefined ? Option.none() : Option.some(Option.some(page.LastEvaluatedKey))
            ])
          )
        )

      const entries: OutcomeBookShape["entries"] = (days, window) =>
        Stream.fromIterable(days).pipe(
          Stream.flatMap((day) => dayItems(day, window)),
          Stream.mapEffect((item) =>
            decodeStored(unmarshall(item)).pipe(
              Effect.mapError((error) => new CorruptBookEntry({ key: String(item["sk"]?.S), reason: error.message }))
            )
          ),
          Stream.runCollect,
          Effect.map((chunk) => Chunk.toReadonlyArray(chunk))
        )

      const runState: OutcomeBookShape["runState"] = Effect.gen(function* () {
        const got = yield* awsCall("dynamodb:GetItem", (abortSignal) =>
          dynamodb.send(new GetItemCommand({ TableName: ledgerTable, Key: marshall(RUN_STATE_KEY), ConsistentRead: true }), { abortSignal })
        )
        const state = yield* decodeRunState(got.Item === undefined ? {} : unmarshall(got.Item)).pipe(
          Effect.mapError((error) => new CorruptBookEntry({ key: "run state", reason: error.message }))
        )
        return {
          lastRecordedAt: state.lastRecordedAt ?? 0,
          lastReportedAt: Option.fromNullable(state.lastReportedAt),
          pendingSince: Option.fromNullable(state.pendingSince)
        }
      })

      /** Sets a run-state time if it moves forward; false when it would not. */
      const advance = (attribute: "lastRecordedAt" | "lastReportedAt", millis: number, pending: string) =>
        awsCall("dynamodb:UpdateItem", (abortSignal) =>
          dynamodb.send(
            new UpdateItemCommand({
              TableName: ledgerTable,
              Key: marshall(RUN_STATE_KEY),
              UpdateExpression: `SET #at = :at${pending}`,
              ConditionExpression: "attribute_not_exists(#at) OR #at < :at",
              ExpressionAttributeNames: { "#at": attribute },
              ExpressionAttributeValues: { ":at": { N: String(millis) } }
            }),
            { abortSignal }
          )
        ).pipe(
          Effect.as(true),
          Effect.catchIf(isLostRace, () => Effect.succeed(false))
        )

      return {
        record,
        markNotified,
        entries,
        runState,
        noteRecorded: (recordedAt) => Effect.asVoid(advance("lastRecordedAt", recordedAt, ", pendingSince = if_not_exists(pendingSince, :at)")),
        claimRun: (untilMs, { stillPending }) => advance("lastReportedAt", untilMs, stillPending ? ", pendingSince = :at" : " REMOVE pendingSince")
      }
    })
  )
}
