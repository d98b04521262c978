import {
  BatchWriteItemCommand,
  CreateTableCommand,
  DescribeTableCommand,
  ScanCommand,
  type AttributeValue,
  type WriteRequest
} from "@aws-sdk/client-dynamodb"
import { GetObjectCommand } from "@aws-sdk/client-s3"
import { Console, Duration, Effect, Either, ParseResult, Random, Schedule, Schema } from "effect"
import {
  ContentSums,
  DynamoDbParquetManifest,
  contentDifferences,
  fromWireItem,
  readParquetContent,
  s3ParquetFile,
  toWireItem,
  type ColumnPlan,
  type TableKeyElement,
  type WireItem
} from "@backup-actions/archive"
import { DynamoDb, S3, awsCall } from "@backup-actions/aws"
import { bringBack } from "../cold-storage"
import { CheckFailed, OperationFailed, UsageError } from "../errors"
import { Progress } from "../progress"
import { s3Url, type S3Location } from "../s3-url"
import { RESTORED_FROM_TAG } from "../restored-names"

/** Items per BatchWriteItem: DynamoDB's limit. */
export const BATCH_SIZE = 25
/** Batches in flight at once. */
export const BATCHES_IN_FLIGHT = 4
/** Retries of a batch's unprocessed items before the restore gives up. */
export const UNPROCESSED_RETRIES = 8

/** The manifest of the export: the object named, or the manifest.json beside data.parquet. */
export const exportManifestLocation = (location: S3Location): Either.Either<S3Location, string> => {
  if (location.key.endsWith("manifest.json")) return Either.right(location)
  if (location.key.endsWith(".parquet")) {
    const slash = location.key.lastIndexOf("/")
    return Either.right({ bucket: location.bucket, key: `${slash < 0 ? "" : location.key.slice(0, slash + 1)}manifest.json` })
  }
  return Either.left(`${s3Url(location)} is neither a DynamoDB Parquet export (data.parquet) nor its manifest (manifest.json)`)
}

const decodeManifest = Schema.decodeUnknownEither(Schema.parseJson(DynamoDbParquetManifest))

const readManifest = (manifest: S3Location) =>
  Effect.gen(function* () {
    const s3 = yield* S3
    const text = yield* awsCall("s3:GetObject", async (abortSignal) => {
      const object = await s3.send(new GetObjectCommand({ Bucket: manifest.bucket, Key: manifest.key }), { abortSignal })
      return (await object.Body?.transformToString()) ?? ""
    }).pipe(
      Effect.catchIf(
        (error) => error.kind === "not-found",
        (error) => Effect.fail(new OperationFailed({ message: `the export's manifest ${s3Url(manifest)} does not exist (${error.code}); a table is restored from the manifest.json beside data.parquet` }))
      )
    )
    const decoded = decodeManifest(text)
    if (Either.isLeft(decoded)) {
      return yield* new OperationFailed({ message: `${s3Url(manifest)} is not a DynamoDB Parquet export's manifest: ${ParseResult.TreeFormatter.formatErrorSync(decoded.left)}` })
    }
    return decoded.right
  })

class TableNotReady extends Schema.TaggedError<TableNotReady>()("TableNotReady", { status: Schema.String }) {}

/** Creates the table with the source's key schema, on demand; a table of that name already there is an error. */
const createTable = (table: string, key: ReadonlyArray<TableKeyElement>, from: string) =>
  Effect.flatMap(DynamoDb, (dynamodb) =>
    awsCall("dynamodb:CreateTable", (abortSignal) =>
      dynamodb.send(
        new CreateTableCommand({
          TableName: table,
          BillingMode: "PAY_PER_REQUEST",
          KeySchema: key.map((element) => ({ AttributeName: element.name, KeyType: element.keyType })),
          AttributeDefinitions: key.map((element) => ({ AttributeName: element.name, AttributeType: element.type })),
          Tags: [{ Key: RESTORED_FROM_TAG, Value: from }]
        }),
        { abortSignal }
      )
    )
  ).pipe(
    Effect.catchIf(
      (error) => error.code === "ResourceInUseException" || error.code === "TableAlreadyExistsException",
      () => Effect.fail(new OperationFailed({ message: `table ${table} already exists; --to-table creates a new table: name one that does not exist` }))
    )
  )

/** Waits until the new table is ACTIVE (seconds on AWS), at most ten minutes. */
const waitActive = (table: string) =>
  Effect.gen(function* () {
    const dynamodb = yield* DynamoDb
    const described = yield* awsCall("dynamodb:DescribeTable", (abortSignal) => dynamodb.send(new DescribeTableCommand({ TableName: table }), { abortSignal }))
    const status = described.Table?.TableStatus ?? "UNKNOWN"
    if (status !== "ACTIVE") return yield* new TableNotReady({ status })
  }).pipe(
    Effect.retry({
      schedule: Schedule.exponential(Duration.millis(500), 1.5).pipe(
        Schedule.modifyDelay((delay) => Duration.min(delay, Duration.seconds(10))),
        Schedule.jittered,
        Schedule.upTo(Duration.minutes(10))
      ),
      while: (error) => error._tag === "TableNotReady" && error.status === "CREATING"
    }),
    Effect.catchTag("TableNotReady", (error) => Effect.fail(new OperationFailed({ message: `the new table ${table} is ${error.status}, not ACTIVE` })))
  )

/** The wait before retrying unprocessed items: doubling from 50 ms up to 5 s, with full jitter. */
const backoff = (retry: number) =>
  Effect.map(Random.next, (share) => Duration.millis(Math.round(Math.min(5_000, 50 * 2 ** retry) * (0.5 + share / 2))))

/**
 * One BatchWriteItem of up to 25 items; what DynamoDB leaves unprocessed (throttling, a
 * partition over its throughput) is sent again after a jittered, growing wait, a bounded
 * number of times.
 */
export const writeBatch = (table: string, items: ReadonlyArray<Record<string, AttributeValue>>) =>
  Effect.gen(function* () {
    const dynamodb = yield* DynamoDb
    let pending: Array<WriteRequest> = items.map((item) => ({ PutRequest: { Item: item } }))
    for (let retry = 0; ; retry += 1) {
      const requests = pending
      const answer = yield* awsCall("dynamodb:BatchWriteItem", (abortSignal) =>
        dynamodb.send(new BatchWriteItemCommand({ RequestItems: { [table]: requests } }), { abortSignal })
      )
      pending = answer.UnprocessedItems?.[table] ?? []
      if (pending.length === 0) return
      if (retry >= UNPROCESSED_RETRIES) {
        return yield* new OperationFailed({ message: `${pending.length} items were still unprocessed after ${UNPROCESSED_RETRIES} retries of BatchWriteItem into ${table}` })
      }
      yield* Effect.sleep(yield* backoff(retry))
    }
  })

const chunks = <A>(values: ReadonlyArray<A>, size: number): ReadonlyArray<ReadonlyArray<A>> =>
  Array.from({ length: Math.ceil(values.length / size) }, (_, index) => values.slice(index * size, (index + 1) * size))

/** Writes a row group's items, several batches at a time. */
const writeItems = (table: string, items: ReadonlyArray<WireItem>) =>
  Effect.forEach(chunks(items.map(fromWireItem), BATCH_SIZE), (batch) => writeBatch(table, batch), { concurrency: BATCHES_IN_FLIGHT, discard: true })

/** The content checksum of the table as a consistent scan reads it now. */
const tableContent = (table: string, columns: ReadonlyArray<ColumnPlan>) =>
  Effect.gen(function* () {
    const dynamodb = yield* DynamoDb
    const sums = new ContentSums(columns)
    let start: Record<string, AttributeValue> | undefined
    do {
      const page = yield* awsCall("dynamodb:Scan", (abortSignal) =>
        dynamodb.send(new ScanCommand({ TableName: table, ConsistentRead: true, ExclusiveStartKey: start }), { abortSignal })
      )
      for (const item of page.Items ?? []) sums.addSourceItem(toWireItem(item))
      start = page.LastEvaluatedKey
    } while (start !== undefined)
    return sums.checksum()
  })

/**
 * `restore <export> --to-table <name>`: a DynamoDB Parquet export written into a new table with
 * the source's key schema (on demand), its rows read back into items, 25 to a BatchWriteItem
 * with several in flight. Then the table is scanned and its item count and column checksums
 * compared with those the export recorded from its source; a difference fails the restore and
 * keeps the table for a look.
 */
export const restoreTableCommand = (location: S3Location, table: string) =>
  Effect.gen(function* () {
    const progress = yield* Progress
    const manifestLocation = exportManifestLocation(location)
    if (Either.isLeft(manifestLocation)) return yield* new UsageError({ message: manifestLocation.left, command: "restore" })
    // In GLACIER or DEEP_ARCHIVE, the manifest and the file are restored by S3 first (both at once when the file was named).
    yield* bringBack(manifestLocation.right.key === location.key ? [location] : [manifestLocation.right, location])
    const manifest = yield* readManifest(manifestLocation.right)
    const data = { bucket: manifest.data.bucket, key: manifest.data.key }
    const from = s3Url(data)
    if (manifest.key === undefined || manifest.key.length === 0) {
      return yield* new OperationFailed({ message: `${s3Url(manifestLocation.right)} does not name the source table's key schema (an export written before restores): it cannot be restored to a table` })
    }
    if (data.bucket !== location.bucket || data.key !== location.key) yield* bringBack([data])
    yield* createTable(table, manifest.key, from)
    yield* waitActive(table)

    const file = yield* s3ParquetFile(manifest.data.bucket, manifest.data.key)
    const meter = yield* progress.meter(`restore ${manifest.data.key} to table ${table}`, file.byteLength)
    let written = 0
    const readBack = yield* readParquetContent({
      file,
      key: manifest.data.key,
      columns: manifest.columns,
      onItems: (items) =>
        writeItems(table, items).pipe(
          Effect.tap(() =>
            Effect.sync(() => {
              written += items.length
              meter.update(file.bytesRead())
            })
          )
        )
    }).pipe(
      Effect.catchTag("ParquetUnreadable", (error) =>
        Effect.fail(new OperationFailed({ message: `${from} cannot be read as the export's Parquet after ${written} items were written to ${table}: ${error.reason}` }))
      )
    )
    meter.finish()

    const restored = yield* tableContent(table, manifest.columns)
    const problems: Array<string> = []
    if (manifest.content === undefined) {
      yield* Console.error(`the export's manifest has no content checksum (an export written before content verification): only the item count is compared`)
      if (restored.items !== manifest.itemCount) problems.push(`table ${table} has ${restored.items} items, the export ${manifest.itemCount}`)
    } else {
      problems.push(...contentDifferences(manifest.content, "the export's source", readBack, "the file"))
      problems.push(...contentDifferences(manifest.content, "the export's source", restored, `table ${table}`))
    }
    if (problems.length > 0) {
      return yield* new CheckFailed({ summary: `table ${table} does not hold what ${from} holds (the table is kept for a look):`, problems })
    }
    yield* Console.error(
      `restored ${from} to table ${table}: ${written} items written; the table's item count${manifest.content === undefined ? "" : " and column checksums"} equal the export's`
    )
    yield* Console.log(table)
  })
