import { PutItemCommand, QueryCommand, type AttributeValue } from "@aws-sdk/client-dynamodb"
import { marshall, unmarshall } from "@aws-sdk/util-dynamodb"
import { Context, Effect, Layer, ParseResult, Schema } from "effect"
import { AwsError, DynamoDb, awsCall } from "@backup-actions/aws"
import { ServiceSettings } from "@backup-actions/config"

/** What a drill restores an artifact into: the scratch it makes, verifies and deletes. */
export const DrillTarget = Schema.Literal("snapshot", "directory", "table", "database", "image")
export type DrillTarget = typeof DrillTarget.Type

/**
 * One restore drill: an artifact restored into scratch and verified, the scratch deleted.
 * `passed` only when the restored copy matched the artifact's manifest; `skipped` when this
 * kind of artifact cannot be drilled where the drill ran (the reason says why).
 */
export const DrillRecord = Schema.Struct({
  /** The protected resource the artifact is a backup of (the recovery point when its resource is not known). */
  resourceArn: Schema.String,
  recoveryPoint: Schema.String,
  /** s3://bucket/key of the artifact drilled. */
  artifact: Schema.String,
  target: DrillTarget,
  result: Schema.Literal("passed", "failed", "skipped"),
  reason: Schema.optional(Schema.String),
  /** When the drill started, ms since the epoch. */
  startedAt: Schema.Number,
  /** Recovery time: seconds from the start until the restored copy was verified (passed drills only). */
  rtoSeconds: Schema.optional(Schema.Number),
  /** The bytes the artifact restored (its uncompressed size), when known. */
  bytes: Schema.optional(Schema.Number),
  /** What the drill made to restore into (a snapshot id, a table name, a directory). */
  scratch: Schema.optional(Schema.String),
  /** The scratch is gone (or nothing was made); false names scratch left for the sweep. */
  scratchDeleted: Schema.Boolean
})
export type DrillRecord = typeof DrillRecord.Type

/** A drill item in the ledger that does not decode: damaged, or written by something else. */
export class DrillRecordInvalid extends Schema.TaggedError<DrillRecordInvalid>()("DrillRecordInvalid", {
  key: Schema.String,
  reason: Schema.String
}) {}

/** The partition holding each resource's last drill, one item per resource: a report reads it in one query. */
export const LATEST_DRILLS_PARTITION = "drill#latest"
/** The partition of one resource's drill history, newest last. */
export const drillHistoryPartition = (resourceArn: string): string => `drill#${resourceArn}`

export interface DrillBookShape {
  /** Records a finished drill: in the resource's history, and as its latest unless a newer one is there. */
  readonly record: (drill: DrillRecord) => Effect.Effect<void, AwsError>
  /** Every resource's last drill. */
  readonly latest: Effect.Effect<ReadonlyArray<DrillRecord>, AwsError | DrillRecordInvalid>
}

const decodeRecord = Schema.decodeUnknown(DrillRecord)
const encodeRecord = Schema.encodeSync(DrillRecord)

/** The ledger's record of restore drills, beside its steps (in their own partitions). */
export class DrillBook extends Context.Tag("backup-actions/DrillBook")<DrillBook, DrillBookShape>() {
  /** On the ledger table the service's settings name. */
  static readonly Live = Layer.unwrapEffect(Effect.map(ServiceSettings, (settings) => DrillBook.onTable(settings.ledgerTable)))

  /** On a named ledger table (the CLI's, from its stack description). */
  static readonly onTable = (ledgerTable: string) =>
    Layer.effect(
      DrillBook,
      Effect.gen(function* () {
        const dynamodb = yield* DynamoDb
        const put = (item: Record<string, unknown>, condition?: { readonly expression: string; readonly values: Record<string, unknown> }) =>
          awsCall("dynamodb:PutItem", (abortSignal) =>
            dynamodb.send(
              new PutItemCommand({
                TableName: ledgerTable,
                Item: marshall(item, { removeUndefinedValues: true }),
                ...(condition === undefined ? {} : { ConditionExpression: condition.expression, ExpressionAttributeValues: marshall(condition.values) })
              }),
              { abortSignal }
            )
          ).pipe(Effect.asVoid)

        const latest = Effect.gen(function* () {
          const drills: Array<DrillRecord> = []
          let start: Record<string, AttributeValue> | undefined
          do {
            const page = yield* awsCall("dynamodb:Query", (abortSignal) =>
              dynamodb.send(
                new QueryCommand({
                  TableName: ledgerTable,
                  KeyConditionExpression: "pk = :pk",
                  ExpressionAttributeValues: { ":pk": { S: LATEST_DRILLS_PARTITION } },
                  ConsistentRead: true,
                  ExclusiveStartKey: start
                }),
                { abortSignal }
              )
            )
            for (const item of page.Items ?? []) {
              const { pk: _pk, sk, ...fields } = unmarshall(item) as Record<string, unknown>
              drills.push(
                yield* decodeRecord(fields).pipe(
                  Effect.mapError((error) => new DrillRecordInvalid({ key: `${LATEST_DRILLS_PARTITION}/${String(sk)}`, reason: ParseResult.TreeFormatter.formatErrorSync(error) }))
                )
              )
            }
            start = page.LastEvaluatedKey
          } while (start !== undefined)
          return drills
        })

        return {
          record: (drill) =>
            Effect.gen(function* () {
              const fields = encodeRecord(drill)
              yield* put({ pk: drillHistoryPartition(drill.resourceArn), sk: new Date(drill.startedAt).toISOString(), ...fields })
              // An older drill that finishes late does not hide a newer one.
              yield* put(
                { pk: LATEST_DRILLS_PARTITION, sk: drill.resourceArn, ...fields },
                { expression: "attribute_not_exists(startedAt) OR startedAt <= :startedAt", values: { ":startedAt": drill.startedAt } }
              ).pipe(Effect.catchIf((error) => error.code === "ConditionalCheckFailedException", () => Effect.void))
            }),
          latest
        }
      })
    )

  /** In memory: for tests of what is recorded and shown, with no DynamoDB. `history` is every drill recorded. */
  static readonly makeTest = () => {
    const history: Array<DrillRecord> = []
    const shape: DrillBookShape = {
      record: (drill) => Effect.sync(() => void history.push(drill)),
      latest: Effect.sync(() => {
        const newest = new Map<string, DrillRecord>()
        for (const drill of history) {
          const known = newest.get(drill.resourceArn)
          if (known === undefined || known.startedAt <= drill.startedAt) newest.set(drill.resourceArn, drill)
        }
        return [...newest.values()]
      })
    }
    return { history, layer: Layer.succeed(DrillBook, shape) }
  }
}
