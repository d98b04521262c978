import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { BatchWriteItemCommand, CreateBackupCommand, CreateTableCommand, ListBackupsCommand } from "@aws-sdk/client-dynamodb"
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3"
import { Effect, Layer } from "effect"
import { fromWireItem, type WireItem } from "@backup-actions/archive"
import { DynamoDb, S3, awsCall } from "@backup-actions/aws"
import { makeMemoryRecoveryPoints } from "@backup-actions/aws/testing"
import { ServiceSettings } from "@backup-actions/config"
import { makeMemoryLedger } from "@backup-actions/ledger/testing"
import { type Emulator, emulatorClients, startEmulator } from "@backup-actions/local"
import { exportDynamoDbAsParquet } from "./dynamodb-parquet"
import { SchemaStats, planColumns } from "./items"
import { writeParquet } from "./parquet-file"
import { deleteExportedSource } from "./source-deletion"
import { subjectFor } from "./test-subjects"

const BUCKET = "parquet-content-test"

let emulator: Emulator
let scratch: string
beforeAll(async () => {
  emulator = await startEmulator({ name: "exporter-parquet-content-test" })
  scratch = mkdtempSync(join(tmpdir(), "exporter-parquet-content-"))
})
afterAll(async () => {
  await emulator?.stop()
  rmSync(scratch, { recursive: true, force: true })
})

/** Items of several types; `variant` changes the values and keeps every attribute's type. */
const itemsOf = (variant: string, count: number): ReadonlyArray<WireItem> =>
  Array.from({ length: count }, (_, index): WireItem => ({
    pk: { S: `customer-${index % 5}` },
    sk: { N: String(index) },
    name: { S: `${variant} ${index}` },
    ...(index % 2 === 0 ? { price: { N: `${index}.5` } } : {}),
    ...(index % 3 === 0 ? { tags: { SS: [`${variant}-${index}`, "common"] } } : {}),
    ...(index % 4 === 0 ? { nested: { M: { list: { L: [{ S: variant }, { N: "1" }, { NULL: true }] } } } } : {})
  }))

/** A table with the items and an on-demand backup of it. */
const tableWithBackup = (table: string, items: ReadonlyArray<WireItem>) =>
  Effect.gen(function* () {
    const dynamodb = yield* DynamoDb
    yield* awsCall("dynamodb:CreateTable", (abortSignal) =>
      dynamodb.send(
        new CreateTableCommand({
          TableName: table,
          BillingMode: "PAY_PER_REQUEST",
          KeySchema: [
            { AttributeName: "pk", KeyType: "HASH" },
            { AttributeName: "sk", KeyType: "RANGE" }
          ],
          AttributeDefinitions: [
            { AttributeName: "pk", AttributeType: "S" },
            { AttributeName: "sk", AttributeType: "N" }
          ]
        }),
        { abortSignal }
      )
    )
    for (let start = 0; start < items.length; start += 25) {
      const batch = items.slice(start, start + 25).map((item) => ({ PutRequest: { Item: fromWireItem(item) } }))
      yield* awsCall("dynamodb:BatchWriteItem", (abortSignal) => dynamodb.send(new BatchWriteItemCommand({ RequestItems: { [table]: batch } }), { abortSignal }))
    }
    const backup = yield* awsCall("dynamodb:CreateBackup", (abortSignal) => dynamodb.send(new CreateBackupCommand({ TableName: table, BackupName: `${table}-backup` }), { abortSignal }))
    return backup.BackupDetails?.BackupArn ?? ""
  })

const backupsOf = (table: string) =>
  Effect.flatMap(DynamoDb, (dynamodb) => awsCall("dynamodb:ListBackups", (abortSignal) => dynamodb.send(new ListBackupsCommand({ TableName: table }), { abortSignal }))).pipe(
    Effect.map((listed) => (listed.BackupSummaries ?? []).map((summary) => summary.BackupArn))
  )

const readJson = (key: string) =>
  Effect.flatMap(S3, (s3) =>
    awsCall("s3:GetObject", async (abortSignal) => {
      const object = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }), { abortSignal })
      return JSON.parse((await object.Body?.transformToString()) ?? "null")
    })
  )

/**
 * After the upload's own check (its HeadObject) answers, the object is replaced with `file`:
 * every checksum S3 keeps then holds for the new object, and only a read-back can tell.
 */
const replaceAfterUpload = (file: string) =>
  Effect.map(S3, (s3) => {
    let armed = true
    s3.middlewareStack.add(
      (next, context) => async (args) => {
        const result = await next(args)
        const input = args.input as { readonly Key?: string }
        if (armed && context.commandName === "HeadObjectCommand" && input.Key?.endsWith("/data.parquet") === true) {
          armed = false
          await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: input.Key, Body: readFileSync(file) }))
        }
        return result
      },
      { step: "initialize", name: "replaceAfterUpload" }
    )
  })

const run = <A, E>(effect: Effect.Effect<A, E, Layer.Layer.Success<ReturnType<typeof emulatorClients>> | ServiceSettings>) =>
  effect.pipe(
    Effect.provide(
      Layer.merge(
        emulatorClients(emulator.endpoint),
        ServiceSettings.layer({ busName: "bus", artifactBucket: BUCKET, ledgerTable: "ledger", queueUrl: "queue", deadLetterQueueUrl: "dlq", workDir: scratch })
      )
    )
  )

const createBucket = Effect.flatMap(S3, (s3) => awsCall("s3:CreateBucket", (abortSignal) => s3.send(new CreateBucketCommand({ Bucket: BUCKET }), { abortSignal }))).pipe(
  Effect.catchIf((error) => error.kind === "conflict", () => Effect.void)
)

const subjectOf = (backupArn: string) =>
  subjectFor({ recoveryPointArn: backupArn, resourceType: "DynamoDB", action: { mode: "parquet", deleteSourceAfterVerify: true, scanSegments: 2 } })

/** Deletes the source as the service does after recording the outcome, over in-memory recovery points. */
const deleteAfter = (backupArn: string, outcome: Parameters<typeof deleteExportedSource>[2]) => {
  const points = makeMemoryRecoveryPoints()
  return deleteExportedSource(subjectOf(backupArn), "dynamodb", outcome).pipe(
    Effect.provide(Layer.merge(points.layer, makeMemoryLedger().layer)),
    Effect.map((after) => ({ after, deletions: points.deletions.map((ref) => ref.recoveryPointArn) }))
  )
}

describe("the DynamoDB Parquet export's content verification on the emulator", () => {
  it.live("reads the uploaded file back, finds the scanned items in it, records both checksums and lets the source go", () =>
    run(
      Effect.gen(function* () {
        // Prepare
        yield* createBucket
        const backupArn = yield* tableWithBackup("verified-orders", itemsOf("source", 60))
        // Act
        const result = yield* exportDynamoDbAsParquet(subjectOf(backupArn))
        const deletion = yield* deleteAfter(backupArn, result.outcome)
        // Assess
        assert.strictEqual(result._tag, "Succeeded")
        assert.strictEqual(result.outcome.verification, "content")
        assert.isTrue(result.outcome.verified)
        const manifest = yield* readJson(result.outcome.manifest?.key ?? "")
        assert.strictEqual(manifest.verified, "content")
        assert.strictEqual(manifest.content.items, 60)
        assert.deepStrictEqual(manifest.readBack, manifest.content)
        assert.deepStrictEqual(manifest.key, [
          { name: "pk", keyType: "HASH", type: "S" },
          { name: "sk", keyType: "RANGE", type: "N" }
        ])
        assert.deepStrictEqual(deletion.deletions, [backupArn])
      })
    )
  )

  it.live("does not verify a file replaced after its upload by a valid Parquet file of other data, and keeps the source", () =>
    run(
      Effect.gen(function* () {
        // Prepare: a table, and a well-formed Parquet file with the same columns and other values
        yield* createBucket
        const items = itemsOf("source", 40)
        const backupArn = yield* tableWithBackup("forged-orders", items)
        const forgedItems = itemsOf("forged", 40)
        const spool = join(scratch, "forged.ndjson")
        writeFileSync(spool, forgedItems.map((item) => `${JSON.stringify(item)}\n`).join(""))
        const stats = new SchemaStats()
        forgedItems.forEach((item) => stats.add(item))
        const forged = yield* writeParquet({
          target: join(scratch, "forged.parquet"),
          spoolFiles: [spool],
          columns: planColumns(stats, [{ name: "pk", type: "S" }, { name: "sk", type: "N" }]),
          metadata: {}
        })
        yield* replaceAfterUpload(forged.file)
        // Act
        const result = yield* exportDynamoDbAsParquet(subjectOf(backupArn))
        const deletion = yield* deleteAfter(backupArn, result.outcome)
        // Assess: S3's checksum held, the content did not, and the names of the columns that differ are in the reason
        assert.strictEqual(result._tag, "Failed")
        assert.strictEqual(result.outcome.status, "failed")
        assert.strictEqual(result.outcome.verification, "upload")
        assert.isFalse(result.outcome.verified)
        assert.match(result.outcome.reason ?? "", /^the Parquet file read back differs from its source: column name: the file read back's checksum is [0-9a-f]{64}, the source's [0-9a-f]{64}; column nested: .*; column tags: .*$/)
        const manifest = yield* readJson(result.outcome.manifest?.key ?? "")
        assert.strictEqual(manifest.verified, "upload")
        assert.notDeepEqual(manifest.readBack, manifest.content)
        // Assess: the source is kept
        assert.deepStrictEqual(deletion.deletions, [])
        assert.isFalse(deletion.after.sourceDeleted)
        assert.include(yield* backupsOf("forged-orders"), backupArn)
      })
    )
  )
})
