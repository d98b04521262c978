import { GetItemCommand, TransactWriteItemsCommand, UpdateItemCommand, type AttributeValue, type DynamoDBClient } from "@aws-sdk/client-dynamodb"
import { marshall, unmarshall, type NativeAttributeValue } from "@aws-sdk/util-dynamodb"
import { Effect, Option, Schema } from "effect"
import { awsCall, type AwsError } from "@backup-actions/aws"

/**
 * Recording once in the ledger: a marker item, written only when its condition holds, and the
 * report row beside it, both in one transaction, so a replayed or repeated event changes nothing.
 * The marker also notes whether a failure was announced.
 */

type Item = Readonly<Record<string, NativeAttributeValue>>

/** What recording a row did. */
export interface Recording {
  /** False when the ledger already held this row or a newer one (a replay or a duplicate). */
  readonly isNew: boolean
  /** A failure nobody has been told about yet (also after a crash between recording and notifying). */
  readonly needsNotification: boolean
}

/** A book that records each row once and notes when a failure was announced. */
export interface RecordOnceBook<Row, Corrupt> {
  /** Records the row once, at `recordedAt`; see the book for when a row counts as already there. */
  readonly record: (row: Row, recordedAt: number) => Effect.Effect<Recording, AwsError | Corrupt>
  /** Notes that the failure of this row was announced. */
  readonly markNotified: (row: Row) => Effect.Effect<void, AwsError>
}

/** A condition on the marker item, with the names and values its expression uses. */
export interface MarkerCondition {
  readonly expression: string
  readonly names?: Readonly<Record<string, string>>
  readonly values?: Readonly<Record<string, AttributeValue>>
}

/** Another write got there first: a condition did not hold, or the transaction was cancelled or collided. */
export const isLostRace = (error: AwsError): boolean => error.code === "TransactionCanceledException" || error.kind === "conflict"

const conditionOf = (condition: MarkerCondition, values: Readonly<Record<string, AttributeValue>> = {}) => {
  const allValues = { ...condition.values, ...values }
  return {
    ConditionExpression: condition.expression,
    ...(condition.names === undefined ? {} : { ExpressionAttributeNames: { ...condition.names } }),
    ...(Object.keys(allValues).length === 0 ? {} : { ExpressionAttributeValues: allValues })
  }
}

/**
 * Writes the marker (only when `onlyIf` holds for the marker there) and the row together; false
 * when the marker's condition did not hold. Give every attempt of one write the same
 * `clientRequestToken` to make a retry after a lost answer the same write, not a lost race.
 */
export const recordOnce = (
  dynamodb: DynamoDBClient,
  ledgerTable: string,
  write: { readonly marker: Item; readonly onlyIf: MarkerCondition; readonly row: Item; readonly clientRequestToken?: string }
): Effect.Effect<boolean, AwsError> =>
  awsCall("dynamodb:TransactWriteItems", (abortSignal) =>
    dynamodb.send(
      new TransactWriteItemsCommand({
        ...(write.clientRequestToken === undefined ? {} : { ClientRequestToken: write.clientRequestToken }),
        TransactItems: [
          { Put: { TableName: ledgerTable, Item: marshall(write.marker), ...conditionOf(write.onlyIf) } },
          { Put: { TableName: ledgerTable, Item: marshall(write.row, { removeUndefinedValues: true }) } }
        ]
      }),
      { abortSignal }
    )
  ).pipe(
    Effect.as(true),
    Effect.catchIf(isLostRace, () => Effect.succeed(false))
  )

/** The marker under `key`, read consistently and decoded; none when there is none. */
export const readMarker = <A, I, E>(
  dynamodb: DynamoDBClient,
  ledgerTable: string,
  key: Item,
  marker: { readonly schema: Schema.Schema<A, I>; readonly corrupt: (reason: string) => E }
): Effect.Effect<Option.Option<A>, AwsError | E> =>
  Effect.gen(function* () {
    const got = yield* awsCall("dynamodb:GetItem", (abortSignal) =>
      dynamodb.send(new GetItemCommand({ TableName: ledgerTable, Key: marshall(key), ConsistentRead: true }), { abortSignal })
    )
    if (got.Item === undefined) return Option.none()
    const decoded = yield* Schema.decodeUnknown(marker.schema)(unmarshall(got.Item)).pipe(Effect.mapError((error) => marker.corrupt(error.message)))
    return Option.some(decoded)
  })

/** Notes on the marker under `key` that its failure was announced, when `onlyIf` holds; nothing when it does not. */
export const markNotified = (dynamodb: DynamoDBClient, ledgerTable: string, key: Item, onlyIf: MarkerCondition): Effect.Effect<void, AwsError> =>
  awsCall("dynamodb:UpdateItem", (abortSignal) =>
    dynamodb.send(
      new UpdateItemCommand({
        TableName: ledgerTable,
        Key: marshall(key),
        UpdateExpression: "SET notified = :yes",
        ...conditionOf(onlyIf, { ":yes": { BOOL: true } })
      }),
      { abortSignal }
    )
  ).pipe(Effect.asVoid, Effect.catchIf(isLostRace, () => Effect.void))
