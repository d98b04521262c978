import { createHash } from "node:crypto"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { DescribeTableCommand, ScanCommand, type AttributeValue } from "@aws-sdk/client-dynamodb"
import { GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3"
import { Effect, Schema, type Layer, type Scope } from "effect"
import { canonicalText, toWireItem } from "@backup-actions/archive"
import { DynamoDb, S3, awsCall } from "@backup-actions/aws"
import { ExportAction, type Policy } from "@backup-actions/config"
import { EMULATOR_ACCOUNT, EMULATOR_REGION } from "@backup-actions/local"
import { sendRecoveryPointEvent, waitForStep } from "./backup-events"
import { runCli } from "./cli-process"
import { tableWithBackup } from "./demo-seed"
import { startLocalStack, type LocalStack } from "./stack"

const policy: Policy = {
  rules: [{ name: "tables", match: { resourceTypes: ["DynamoDB"] }, export: Schema.decodeUnknownSync(ExportAction)({ mode: "parquet", scanSegments: 3 }) }]
}

let local: LocalStack
let scratch: string
let stackFile: string
/** The export of the seeded table: its data.parquet and its manifest. */
let exported: { readonly bucket: string; readonly data: string; readonly manifest: string }

const run = <A, E>(effect: Effect.Effect<A, E, Layer.Layer.Success<LocalStack["clients"]> | Scope.Scope>) =>
  Effect.runPromise(Effect.scoped(Effect.provide(effect, local.clients)))
const cli = (...args: ReadonlyArray<string>) => runCli(stackFile, ...args)

const ITEM_COUNT = 130
const s = (value: string): AttributeValue => ({ S: value })
const n = (value: string): AttributeValue => ({ N: value })

/** Items of every type the export keeps: scalars, sets, maps with lists, an attribute of two types, NULL. */
const makeItem = (index: number): Record<string, AttributeValue> => {
  const item: Record<string, AttributeValue> = { pk: s(`customer-${index % 7}`), sk: n(String(index)), name: s(`naïve ünïcödé ${index} ✓`) }
  if (index % 2 === 0) item["count"] = n(String(index * 1_000_003))
  if (index % 3 === 0) item["price"] = n(`${index}.25`)
  if (index % 5 === 0) item["big"] = n("123456789012345678901234567890.5")
  if (index % 4 === 0) item["flag"] = { BOOL: index % 8 === 0 }
  if (index % 6 === 0) item["blob"] = { B: createHash("sha256").update(String(index)).digest() }
  if (index % 9 === 0) item["tags"] = { SS: [`t${index}`, "common"] }
  if (index % 10 === 0) item["scores"] = { NS: ["1", "2.5", "12345678901234567890123"] }
  if (index % 11 === 0) item["nested"] = { M: { level: n("1"), list: { L: [s("a"), n("2"), { BOOL: false }, { NULL: true }, { M: { deep: s("yes") } }] } } }
  if (index % 13 === 0) item["mixed"] = index % 2 === 0 ? s("text") : n("13")
  if (index % 17 === 0) item["nothing"] = { NULL: true }
  return item
}

/** Every item of a table in canonical DynamoDB JSON, ordered: what two tables are compared by. */
const itemsOf = (table: string) =>
  Effect.gen(function* () {
    const dynamodb = yield* DynamoDb
    const items: Array<string> = []
    let start: Record<string, AttributeValue> | undefined
    do {
      const page = yield* awsCall("dynamodb:Scan", (abortSignal) => dynamodb.send(new ScanCommand({ TableName: table, ExclusiveStartKey: start }), { abortSignal }))
      for (const item of page.Items ?? []) items.push(canonicalText({ M: toWireItem(item) }))
      start = page.LastEvaluatedKey
    } while (start !== undefined)
    return items.sort()
  })

const describeTable = (table: string) =>
  Effect.flatMap(DynamoDb, (dynamodb) => awsCall("dynamodb:DescribeTable", (abortSignal) => dynamodb.send(new DescribeTableCommand({ TableName: table }), { abortSignal }))).pipe(
    Effect.map((described) => described.Table)
  )

const getText = (bucket: string, key: string) =>
  Effect.flatMap(S3, (s3) =>
    awsCall("s3:GetObject", async (abortSignal) => (await (await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }), { abortSignal })).Body?.transformToString()) ?? "")
  )

const putText = (bucket: string, key: string, text: string) =>
  Effect.flatMap(S3, (s3) => awsCall("s3:PutObject", (abortSignal) => s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: text }), { abortSignal })))

beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), "restore-table-test-"))
  local = await startLocalStack({ name: "restore-table-test", policy, services: ["exporter"] })
  stackFile = join(scratch, "stack.json")
  writeFileSync(stackFile, JSON.stringify({ endpoint: local.emulator.endpoint, ...local.stack }, null, 2))
  // The seeded table exported as the exporter does it, verified to its content
  const items = Array.from({ length: ITEM_COUNT }, (_, index) => makeItem(index))
  const seeded = await run(tableWithBackup("orders", { partition: ["pk", "S"], sort: ["sk", "N"] }, items))
  await run(
    sendRecoveryPointEvent({
      recoveryPointArn: seeded.backupArn,
      resourceArn: `arn:aws:dynamodb:${EMULATOR_REGION}:${EMULATOR_ACCOUNT}:table/orders`,
      resourceType: "DynamoDB",
      vault: "Default"
    })
  )
  const record = await run(waitForStep(local.stack.ledgerTable, seeded.backupArn, "export:parquet", "3 minutes"))
  assert.strictEqual(record["status"], "succeeded", String(record["reason"]))
  assert.strictEqual(record["outcome"].verification, "content")
  exported = { bucket: record["outcome"].location.bucket, data: record["outcome"].location.key, manifest: record["outcome"].manifest.key }
}, 300_000)

afterAll(async () => {
  await local?.stop()
  rmSync(scratch, { recursive: true, force: true })
})

describe("restore --to-table on the emulator", () => {
  it("restores a Parquet export into a new table with the source's key schema and every item, and checks it", async () => {
    // Act
    const restored = await cli("restore", `s3://${exported.bucket}/${exported.data}`, "--to-table", "orders-restored")
    // Assess: the command's answer
    assert.strictEqual(restored.status, 0, restored.stderr)
    assert.strictEqual(restored.stdout, "orders-restored\n")
    assert.include(restored.stderr, `restored s3://${exported.bucket}/${exported.data} to table orders-restored: ${ITEM_COUNT} items written; the table's item count and column checksums equal the export's`)
    // Assess: the table, and every item as the source has it (a NULL attribute is kept as a missing one)
    const table = await run(describeTable("orders-restored"))
    assert.deepStrictEqual(table?.KeySchema, [
      { AttributeName: "pk", KeyType: "HASH" },
      { AttributeName: "sk", KeyType: "RANGE" }
    ])
    assert.strictEqual(table?.BillingModeSummary?.BillingMode, "PAY_PER_REQUEST")
    const source = (await run(itemsOf("orders"))).map((text) => text.replace(/,?"nothing":\{"NULL":true\}/, "").replace("{,", "{"))
    const copy = await run(itemsOf("orders-restored"))
    assert.strictEqual(copy.length, ITEM_COUNT)
    assert.deepStrictEqual(copy, source)
  })

  it("restores from the manifest's URL too, and refuses a table that already exists", async () => {
    // Act
    const fromManifest = await cli("restore", `s3://${exported.bucket}/${exported.manifest}`, "--to-table", "orders-from-manifest")
    const again = await cli("restore", `s3://${exported.bucket}/${exported.manifest}`, "--to-table", "orders-from-manifest")
    // Assess
    assert.strictEqual(fromManifest.status, 0, fromManifest.stderr)
    assert.strictEqual((await run(itemsOf("orders-from-manifest"))).length, ITEM_COUNT)
    assert.strictEqual(again.status, 1)
    assert.include(again.stderr, "table orders-from-manifest already exists; --to-table creates a new table: name one that does not exist")
  })

  it("exits 1 naming the column whose checksum the restored table does not match", async () => {
    // Prepare: a copy of the manifest whose source checksum of one column is another
    const manifest = JSON.parse(await run(getText(exported.bucket, exported.manifest)))
    const price = manifest.content.columns.find((column: { readonly name: string }) => column.name === "price")
    price.sum = "0".repeat(64)
    const tampered = exported.manifest.replace(/manifest\.json$/, "tampered/manifest.json")
    await run(putText(exported.bucket, tampered, JSON.stringify(manifest)))
    // Act
    const restored = await cli("restore", `s3://${exported.bucket}/${tampered}`, "--to-table", "orders-tampered")
    // Assess
    assert.strictEqual(restored.status, 1)
    assert.include(restored.stderr, `backup-actions: table orders-tampered does not hold what s3://${exported.bucket}/${exported.data} holds (the table is kept for a look):`)
    assert.match(restored.stderr, /column price: table orders-tampered's checksum is [0-9a-f]{64}, the export's source's 0{64}/)
    assert.notInclude(restored.stderr, "column name:")
  })
})
