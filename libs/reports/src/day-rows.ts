import { QueryCommand, type AttributeValue, type DynamoDBClient } from "@aws-sdk/client-dynamodb"
import { unmarshall } from "@aws-sdk/util-dynamodb"
import { Chunk, Effect, Option, Schema, Stream } from "effect"
import { awsCall, type AwsError } from "@backup-actions/aws"

/** The UTC day (yyyy-mm-dd) of a time in milliseconds. */
export const dayOf = (millis: number): string => new Date(millis).toISOString().slice(0, 10)

/** Every UTC day from the one holding `fromMs` to the one holding `toMs`, at most `limit` of them. */
export const daysBetween = (fromMs: number, toMs: number, limit = 31): ReadonlyArray<string> => {
  const dayMs = 86_400_000
  const first = Math.max(Math.floor(fromMs / dayMs), Math.floor(toMs / dayMs) - limit + 1)
  const last = Math.floor(toMs / dayMs)
  return Array.from({ length: Math.max(0, last - first + 1) }, (_, index) => dayOf((first + index) * dayMs))
}

/** Recording times in (afterMs, untilMs]. */
export interface RecordingWindow {
  readonly afterMs: number
  readonly untilMs: number
}

const dayItems = (dynamodb: DynamoDBClient, ledgerTable: string, partition: string, window: RecordingWindow | undefined) =>
  Stream.paginateChunkEffect(Option.none<Record<string, AttributeValue>>(), (startKey) =>
    awsCall("dynamodb:Query", (abortSignal) =>
      dynamodb.send(
        new QueryCommand({
          TableName: ledgerTable,
          KeyConditionExpression: "pk = :pk",
          ...(window === undefined
            ? { ExpressionAttributeValues: { ":pk": { S: partition } } }
            : {
                FilterExpression: "recordedAt > :after AND recordedAt <= :until",
                ExpressionAttributeValues: {
                  ":pk": { S: partition },
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

/**
 * The report rows of the given days in the ledger (each day's rows under the partition
 * `partitionOf(day)`), with a recording time in the window when one is given, every page, decoded
 * with `schema`; a row that does not decode is `corrupt`, named by its sort key.
 */
export const readDayRows = <A, I, E>(
  dynamodb: DynamoDBClient,
  ledgerTable: string,
  rows: { readonly partitionOf: (day: string) => string; readonly schema: Schema.Schema<A, I>; readonly corrupt: (key: string, reason: string) => E },
  days: ReadonlyArray<string>,
  window: RecordingWindow | undefined
): Effect.Effect<ReadonlyArray<A>, AwsError | E> => {
  const decode = Schema.decodeUnknown(rows.schema)
  return Stream.fromIterable(days).pipe(
    Stream.flatMap((day) => dayItems(dynamodb, ledgerTable, rows.partitionOf(day), window)),
    Stream.mapEffect((item) => decode(unmarshall(item)).pipe(Effect.mapError((error) => rows.corrupt(String(item["sk"]?.S), error.message)))),
    Stream.runCollect,
    Effect.map((chunk) => Chunk.toReadonlyArray(chunk))
  )
}
