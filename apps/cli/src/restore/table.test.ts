import { assert, describe, it } from "@effect/vitest"
import { BatchWriteItemCommand, CreateTableCommand, DynamoDBClient, ResourceInUseException } from "@aws-sdk/client-dynamodb"
import { GetObjectCommand, HeadObjectCommand, S3Client } from "@aws-sdk/client-s3"
import { mockClient } from "aws-sdk-client-mock"
import { Effect, Either, Fiber, Layer, TestClock } from "effect"
import { DynamoDb, S3 } from "@backup-actions/aws"
import { Progress } from "../progress"
import { BATCH_SIZE, UNPROCESSED_RETRIES, exportManifestLocation, restoreTableCommand, writeBatch } from "./table"

const TABLE = "orders-restored"
const item = (index: number) => ({ pk: { S: `p${index}` }, sk: { N: String(index) } })

const mocked = () => {
  const dynamodb = new DynamoDBClient({ region: "us-east-1" })
  const s3 = new S3Client({ region: "us-east-1" })
  const layer = Layer.mergeAll(Layer.succeed(DynamoDb, dynamodb), Layer.succeed(S3, s3), Progress.silent)
  return { dynamodb: mockClient(dynamodb), s3: mockClient(s3), layer }
}

describe("writing a restored table's items", () => {
  it.effect("sends again what DynamoDB left unprocessed, after a growing wait, until nothing is left", () =>
    Effect.gen(function* () {
      // Prepare: the first answer leaves two items, the second one, the third none
      const { dynamodb, layer } = mocked()
      const items = Array.from({ length: BATCH_SIZE }, (_, index) => item(index))
      dynamodb
        .on(BatchWriteItemCommand)
        .resolvesOnce({ UnprocessedItems: { [TABLE]: [{ PutRequest: { Item: item(3) } }, { PutRequest: { Item: item(7) } }] } })
        .resolvesOnce({ UnprocessedItems: { [TABLE]: [{ PutRequest: { Item: item(7) } }] } })
        .resolves({ UnprocessedItems: {} })
      // Act
      const fiber = yield* Effect.fork(writeBatch(TABLE, items).pipe(Effect.provide(layer)))
      yield* TestClock.adjust("1 minute")
      yield* Fiber.join(fiber)
      // Assess
      const sent = dynamodb.commandCalls(BatchWriteItemCommand).map((call) => (call.args[0].input.RequestItems?.[TABLE] ?? []).length)
      assert.deepStrictEqual(sent, [25, 2, 1])
      assert.deepStrictEqual(dynamodb.commandCalls(BatchWriteItemCommand)[2]?.args[0].input.RequestItems?.[TABLE], [{ PutRequest: { Item: item(7) } }])
    })
  )

  it.effect("gives up with the count of items still unprocessed after its retries", () =>
    Effect.gen(function* () {
      // Prepare
      const { dynamodb, layer } = mocked()
      dynamodb.on(BatchWriteItemCommand).resolves({ UnprocessedItems: { [TABLE]: [{ PutRequest: { Item: item(1) } }] } })
      // Act
      const fiber = yield* Effect.fork(Effect.flip(writeBatch(TABLE, [item(1), item(2)]).pipe(Effect.provide(layer))))
      yield* TestClock.adjust("10 minutes")
      const error = yield* Fiber.join(fiber)
      // Assess
      assert.strictEqual(error._tag, "OperationFailed")
      assert.strictEqual(error._tag === "OperationFailed" ? error.message : "", `1 items were still unprocessed after ${UNPROCESSED_RETRIES} retries of BatchWriteItem into ${TABLE}`)
      assert.strictEqual(dynamodb.commandCalls(BatchWriteItemCommand).length, UNPROCESSED_RETRIES + 1)
    })
  )
})

describe("restoring an export to a table", () => {
  it("finds the manifest beside the data file, takes a manifest as it is, and refuses any other object", () => {
    assert.deepStrictEqual(exportManifestLocation({ bucket: "b", key: "exports/dynamodb/orders/1/data.parquet" }), Either.right({ bucket: "b", key: "exports/dynamodb/orders/1/manifest.json" }))
    assert.deepStrictEqual(exportManifestLocation({ bucket: "b", key: "exports/dynamodb/orders/1/manifest.json" }), Either.right({ bucket: "b", key: "exports/dynamodb/orders/1/manifest.json" }))
    assert.isTrue(Either.isLeft(exportManifestLocation({ bucket: "b", key: "archives/ebs/snap-1/direct/disk.img.zst" })))
  })

  const manifest = (key: unknown) =>
    JSON.stringify({
      kind: "backup-actions/dynamodb-parquet-manifest",
      source: { backupArn: "arn:aws:dynamodb:us-east-1:123456789012:table/orders/backup/1", table: "orders" },
      data: { bucket: "b", key: "exports/dynamodb/orders/1/data.parquet", bytes: 100, rowGroups: 1 },
      itemCount: 1,
      columns: [{ name: "pk", type: "STRING", dynamodbTypes: ["S"] }],
      ...(key === undefined ? {} : { key }),
      verified: true
    })

  const answering = (text: string) => {
    const setup = mocked()
    // In STANDARD: read at once, nothing to restore from cold storage
    setup.s3.on(HeadObjectCommand).resolves({ ContentLength: 100 })
    // Only what the restore reads of the body
    setup.s3.on(GetObjectCommand).callsFake(async () => ({ Body: { transformToString: async () => text } }))
    return setup
  }

  it.effect("creates the table with the source's key schema on demand, and fails clearly when it exists", () =>
    Effect.gen(function* () {
      // Prepare
      const { dynamodb, layer } = answering(manifest([{ name: "pk", keyType: "HASH", type: "S" }]))
      dynamodb.on(CreateTableCommand).rejects(new ResourceInUseException({ message: "Table already exists: orders-restored", $metadata: {} }))
      // Act
      const error = yield* Effect.flip(restoreTableCommand({ bucket: "b", key: "exports/dynamodb/orders/1/data.parquet" }, TABLE).pipe(Effect.provide(layer)))
      // Assess
      assert.deepStrictEqual(dynamodb.commandCalls(CreateTableCommand)[0]?.args[0].input, {
        TableName: TABLE,
        BillingMode: "PAY_PER_REQUEST",
        KeySchema: [{ AttributeName: "pk", KeyType: "HASH" }],
        AttributeDefinitions: [{ AttributeName: "pk", AttributeType: "S" }],
        Tags: [{ Key: "backup-actions:restored-from", Value: "s3://b/exports/dynamodb/orders/1/data.parquet" }]
      })
      assert.strictEqual(error._tag, "OperationFailed")
      assert.strictEqual(error._tag === "OperationFailed" ? error.message : "", `table ${TABLE} already exists; --to-table creates a new table: name one that does not exist`)
    })
  )

  it.effect("refuses an export whose manifest has no key schema, creating nothing", () =>
    Effect.gen(function* () {
      // Prepare
      const { dynamodb, layer } = answering(manifest(undefined))
      // Act
      const error = yield* Effect.flip(restoreTableCommand({ bucket: "b", key: "exports/dynamodb/orders/1/manifest.json" }, TABLE).pipe(Effect.provide(layer)))
      // Assess
      assert.strictEqual(error._tag, "OperationFailed")
      assert.match(error._tag === "OperationFailed" ? error.message : "", /does not name the source table's key schema/)
      assert.strictEqual(dynamodb.commandCalls(CreateTableCommand).length, 0)
    })
  )
})
