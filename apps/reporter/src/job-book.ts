import { randomUUID } from "node:crypto"
import { GetItemCommand, QueryCommand, TransactWriteItemsCommand, UpdateItemCommand, type AttributeValue } from "@aws-sdk/client-dynamodb"
import { marshall, unmarshall } from "@aws-sdk/util-dynamodb"
import { Chunk, Context, Effect, Layer, Option, Schema, Stream } from "effect"
import { AwsError, DynamoDb, awsCall } from "@backup-actions/aws"
import { ServiceSettings } from "@backup-actions/config"
import { AwsBackupJobEntry, jobKeyOf } from "@backup-actions/reports"
import { dayOf, type Recording } from "./book"

/** A recorded AWS Backup job state: the report row and when the reporter recorded it. */
export interface RecordedJob {
  readonly job: AwsBackupJobEntry
  readonly recordedAt: number
}

/**
 * The marker that makes a job's state recorded once, whatever day a replay comes on: one per
 * kind of job, job id and state. The day's row beside it is what reports read.
 */
const markerKey = (job: AwsBackupJobEntry) => ({ pk: `aws-backup-job#${jobKeyOf(job)}`, sk: "recorded" })
const dayKey = (day: string, job: AwsBackupJobEntry) => ({ pk: `aws-backup-jobs#${day}`, sk: jobKeyOf(job) })

const StoredJob = Schema.Struct({ job: AwsBackupJobEntry, recordedAt: Schema.Number })
const decodeStored = Schema.decodeUnknown(StoredJob)
const encodeJob = Schema.encodeSync(AwsBackupJobEntry)

const MarkerItem = Schema.Struct({ notified: Schema.optional(Schema.Boolean) })
const decodeMarker = Schema.decodeUnknown(MarkerItem)

/** A stored AWS Backup job record could not be read back as what this build writes. */
export class CorruptJobRecord extends Schema.TaggedError<CorruptJobRecord>()("CorruptJobRecord", {
  key: Schema.String,
  reason: Schema.String
}) {}

const isLostRace = (error: AwsError): boolean => error.code === "TransactionCanceledException" || error.kind === "conflict"

export interface AwsBackupJobBookShape {
  /**
   * Records a job's state once: the marker and the day's row are written together, and only
   * when the marker is not there yet, so a replayed or repeated event changes nothing. A
   * failure nobody was told about yet (also after a crash between recording and notifying)
   * needs its notification.
   */
  readonly record: (job: AwsBackupJobEntry, recordedAt: number) => Effect.Effect<Recording, AwsError | CorruptJobRecord>
  /** Notes that the failure of this job was announced. */
  readonly markNotified: (job: AwsBackupJobEntry) => Effect.Effect<void, AwsError>
  /** The jobs recorded in the given days, with a recording time in (afterMs, untilMs]. */
  readonly jobs: (
    days: ReadonlyArray<string>,
    window?: { readonly afterMs: number; readonly untilMs: number }
  ) => Effect.Effect<ReadonlyArray<RecordedJob>, AwsError | CorruptJobRecord>
}

/** The reporter's record of AWS Backup's own jobs, in the ledger table beside the outcomes. */
export class AwsBackupJobBook extends Context.Tag("backup-actions/AwsBackupJobBook")<AwsBackupJobBook, AwsBackupJobBookShape>() {
  static readonly Live = Layer.effect(
    AwsBackupJobBook,
    Effect.gen(function* () {
      const dynamodb = yield* DynamoDb
      const { ledgerTable } = yield* ServiceSettings

      const readMarker = (job: AwsBackupJobEntry) =>
        Effect.gen(function* () {
          const got = yield* awsCall("dynamodb:GetItem", (abortSignal) =>
            dynamodb.send(new GetItemCommand({ TableName: ledgerTable, Key: marshall(markerKey(job)), ConsistentRead: true }), { abortSignal })
          )
          if (got.Item === undefined) return Option.none()
          const marker = yield* decodeMarker(unmarshall(got.Item)).pipe(
            Effect.mapError((error) => new CorruptJobRecord({ key: jobKeyOf(job), reason: error.message }))
          )
          return Option.some(marker)
        })

      const record: AwsBackupJobBookShape["record"] = (job, recordedAt) =>
        Effect.gen(function* () {
          const day = dayOf(recordedAt)
          // One token for every attempt of this write: a retry after a lost answer is the same write, not a lost race.
          const clientRequestToken = randomUUID()
          const written = yield* awsCall("dynamodb:TransactWriteItems", (abortSignal) =>
            dynamodb.send(
              new TransactWriteItemsCommand({
                ClientRequestToken: clientRequestToken,
                TransactItems: [
                  {
                    Put: {
                      TableName: ledgerTable,
                      Item: marshall({ ...markerKey(job), time: job.time, state: job.state, day, notified: false }),
                      ConditionExpression: "attribute_not_exists(pk)"
                    }
                  },
                  {
                    Put: {
                      TableName: ledgerTable,
                      Item: marshall({ ...dayKey(day, job), job: encodeJob(job), recordedAt }, { removeUndefinedValues: true })
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
          if (!job.failed) return { isNew: written, needsNotification: false }
          if (written) return { isNew: true, needsNotification: true }
          const marker = yield* readMarker(job)
          return { isNew: false, needsNotification: Option.exists(marker, (item) => item.notified !== true) }
        })

      const markNotified: AwsBackupJobBookShape["markNotified"] = (job) =>
        awsCall("dynamodb:UpdateItem", (abortSignal) =>
          dynamodb.send(
            new UpdateItemCommand({
              TableName: ledgerTable,
              Key: marshall(markerKey(job)),
              UpdateExpression: "SET notified = :yes",
              ConditionExpression: "attribute_exists(pk)",
              ExpressionAttributeValues: { ":yes": { BOOL: true } }
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
                  ? { ExpressionAttributeValues: { ":pk": { S: `aws-backup-jobs#${day}` } } }
                  : {
                      FilterExpression: "recordedAt > :after AND recordedAt <= :until",
                      ExpressionAttributeValues: {
                        ":pk": { S: `aws-backup-jobs#${day}` },
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

      const jobs: AwsBackupJobBookShape["jobs"] = (days, window) =>
        Stream.fromIterable(days).pipe(
          Stream.flatMap((day) => dayItems(day, window)),
          Stream.mapEffect((item) =>
            decodeStored(unmarshall(item)).pipe(Effect.mapError((error) => new CorruptJobRecord({ key: String(item["sk"]?.S), reason: error.message })))
          ),
          Stream.runCollect,
          Effect.map((chunk) => Chunk.toReadonlyArray(chunk))
        )

      return { record, markNotified, jobs }
    })
  )
}
