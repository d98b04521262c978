import { GetItemCommand, UpdateItemCommand } from "@aws-sdk/client-dynamodb"
import { marshall, unmarshall } from "@aws-sdk/util-dynamodb"
import { Context, Effect, Layer, Option, Schema } from "effect"
import { AwsError, DynamoDb, awsCall } from "@backup-actions/aws"
import { ServiceSettings } from "@backup-actions/config"
import { RecordedOutcome, ReportEntry, dayOf, outcomeDayPartition, readDayRows, type RecordingWindow } from "@backup-actions/reports"
import { isLostRace, markNotified, readMarker, recordOnce, type RecordOnceBook } from "./record-once"

/** A recorded entry: the report row and when the reporter recorded it. */
export interface RecordedEntry {
  readonly entry: ReportEntry
  readonly recordedAt: number
}

/** Where run reports start and end: the reporter's own bookkeeping. */
export interface RunState {
  readonly lastRecordedAt: number
  readonly lastReportedAt: Option.Option<number>
  /** When the oldest outcome that no run report covers yet was recorded. */
  readonly pendingSince: Option.Option<number>
}

const latestKey = (idempotencyKey: string) => ({ pk: `outcome#${idempotencyKey}`, sk: "latest" })
const dayKey = (day: string, idempotencyKey: string) => ({ pk: outcomeDayPartition(day), sk: idempotencyKey })
const RUN_STATE_KEY = { pk: "report#state", sk: "run" }

const encodeEntry = Schema.encodeSync(ReportEntry)

const LatestItem = Schema.Struct({
  time: Schema.String,
  status: Schema.String,
  notified: Schema.optional(Schema.Boolean)
})

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

/**
 * Records an outcome once: the day's row and the newest-outcome marker are written together,
 * and only when this outcome is newer than what is there, so a replayed event changes nothing
 * while a re-run that succeeded after a failure replaces it.
 */
export interface OutcomeBookShape extends RecordOnceBook<ReportEntry, CorruptBookEntry> {
  /** The entries recorded in the given days, with a recording time in (afterMs, untilMs]. */
  readonly entries: (days: ReadonlyArray<string>, window?: RecordingWindow) => Effect.Effect<ReadonlyArray<RecordedEntry>, AwsError | CorruptBookEntry>
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

      /** The names and values of a condition on the time of the newest outcome (the marker). */
      const outcomeTime = (entry: ReportEntry) => ({ names: { "#time": "time" }, values: { ":time": { S: entry.time } } })

      const record: OutcomeBookShape["record"] = (entry, recordedAt) =>
        Effect.gen(function* () {
          const day = dayOf(recordedAt)
          const written = yield* recordOnce(dynamodb, ledgerTable, {
            marker: { ...latestKey(entry.idempotencyKey), time: entry.time, status: entry.status, day, notified: false },
            onlyIf: { expression: "attribute_not_exists(pk) OR #time < :time", ...outcomeTime(entry) },
            row: { ...dayKey(day, entry.idempotencyKey), entry: encodeEntry(entry), recordedAt }
          })
          if (entry.status !== "failed") return { isNew: written, needsNotification: false }
          const latest = yield* readMarker(dynamodb, ledgerTable, latestKey(entry.idempotencyKey), {
            schema: LatestItem,
            corrupt: (reason) => new CorruptBookEntry({ key: entry.idempotencyKey, reason })
          })
          const needsNotification = Option.match(latest, {
            onNone: () => false,
            onSome: (item) => item.time === entry.time && item.status === "failed" && item.notified !== true
          })
          return { isNew: written, needsNotification }
        })

      const entries: OutcomeBookShape["entries"] = (days, window) =>
        readDayRows(
          dynamodb,
          ledgerTable,
          { partitionOf: outcomeDayPartition, schema: RecordedOutcome, corrupt: (key, reason) => new CorruptBookEntry({ key, reason }) },
          days,
          window
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
        markNotified: (entry) => markNotified(dynamodb, ledgerTable, latestKey(entry.idempotencyKey), { expression: "#time = :time", ...outcomeTime(entry) }),
        entries,
        runState,
        noteRecorded: (recordedAt) => Effect.asVoid(advance("lastRecordedAt", recordedAt, ", pendingSince = if_not_exists(pendingSince, :at)")),
        claimRun: (untilMs, { stillPending }) => advance("lastReportedAt", untilMs, stillPending ? ", pendingSince = :at" : " REMOVE pendingSince")
      }
    })
  )
}
