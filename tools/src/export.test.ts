import { execFileSync } from "node:child_process"
import { createHash } from "node:crypto"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import {
  ListBackupsCommand,
  ListTablesCommand,
  type AttributeValue
} from "@aws-sdk/client-dynamodb"
import { CreateAliasCommand, CreateKeyCommand } from "@aws-sdk/client-kms"
import { DescribeDBSnapshotsCommand, DescribeExportTasksCommand } from "@aws-sdk/client-rds"
import { GetQueueAttributesCommand } from "@aws-sdk/client-sqs"
import { Effect, Schema, type Layer, type Scope } from "effect"
import { DynamoDb, Kms, Rds, Sqs, awsCall } from "@backup-actions/aws"
import { ExportAction, type Policy } from "@backup-actions/config"
import { EMULATOR_ACCOUNT, EMULATOR_REGION, workspaceRoot } from "@backup-actions/local"
import { sendRecoveryPointEvent, waitForStep } from "./backup-events"
import { dbSnapshotOf, tableWithBackup } from "./demo-seed"
import { startLocalStack, type LocalStack } from "./stack"

const exportRule = (name: string, match: Policy["rules"][number]["match"], action: Schema.Schema.Encoded<typeof ExportAction>) => ({
  name,
  match,
  export: Schema.decodeUnknownSync(ExportAction)(action)
})

const ROLE = `arn:aws:iam::${EMULATOR_ACCOUNT}:role/rds-s3-export`

const policy: Policy = {
  rules: [
    exportRule("dynamodb-delete", { resourceTypes: ["DynamoDB"], vaults: ["export-and-delete"] }, { mode: "parquet", deleteSourceAfterVerify: true, scanSegments: 3 }),
    exportRule("dynamodb", { resourceTypes: ["DynamoDB"] }, { mode: "parquet", scanSegments: 3 }),
    exportRule("rds-missing-key", { resourceTypes: ["RDS"], vaults: ["rds-missing-key"] }, { mode: "native", kmsKeyId: "alias/no-such-key", iamRoleArn: ROLE }),
    exportRule("rds", { resourceTypes: ["RDS"] }, { mode: "native", kmsKeyId: "alias/export-test", iamRoleArn: ROLE, tables: ["shop", "shop.orders"] })
  ]
}

let local: LocalStack
let scratch: string

const run = <A, E>(effect: Effect.Effect<A, E, Layer.Layer.Success<LocalStack["clients"]> | Scope.Scope>) =>
  Effect.runPromise(Effect.scoped(Effect.provide(effect, local.clients)))

/** Downloads an object with the AWS CLI, a client independent of this project's code. */
const download = (bucket: string, key: string, file: string): void => {
  execFileSync("aws", ["--endpoint-url", local.emulator.endpoint, "s3", "cp", `s3://${bucket}/${key}`, file, "--only-show-errors"], {
    env: { ...process.env, ...local.environment("exporter"), AWS_DEFAULT_REGION: EMULATOR_REGION },
    stdio: "pipe"
  })
}

/** Reads a Parquet file with DuckDB (the project's Python environment): column types and rows, ordered by key. */
const readWithDuckDb = (file: string): { readonly types: Record<string, string>; readonly rows: ReadonlyArray<Record<string, unknown>> } => {
  const script = `
import base64, json, sys, duckdb
relation = duckdb.read_parquet(sys.argv[1]).order("pk, sk")
types = {name: str(kind) for name, kind in zip(relation.columns, relation.types)}
def plain(value):
    return base64.b64encode(value).decode() if isinstance(value, (bytes, bytearray)) else value
rows = [{name: plain(value) for name, value in zip(relation.columns, row)} for row in relation.fetchall()]
print(json.dumps({"types": types, "rows": rows}))
`
  const output = execFileSync(join(workspaceRoot(), ".venv", "bin", "python"), ["-c", script, file]).toString()
  return JSON.parse(output)
}

const ITEM_COUNT = 240
const s = (value: string): AttributeValue => ({ S: value })
const n = (value: string): AttributeValue => ({ N: value })

/** Items of varied shapes: some attributes on every item, some on a few, one with two types. */
const makeItem = (index: number): Record<string, AttributeValue> => {
  const item: Record<string, AttributeValue> = { pk: s(`customer-${String(index % 7).padStart(2, "0")}`), sk: n(String(index)), name: s(`naïve ünïcödé ${index} ✓`) }
  if (index % 2 === 0) item["count"] = n(String(index * 1_000_003))
  if (index % 3 === 0) item["price"] = n(`${index}.25`)
  if (index % 5 === 0) item["big"] = n("123456789012345678901234567890.5")
  if (index % 4 === 0) item["flag"] = { BOOL: index % 8 === 0 }
  if (index % 6 === 0) item["blob"] = { B: createHash("sha256").update(String(index)).digest() }
  if (index % 9 === 0) item["tags"] = { SS: [`t${index}`, "common"] }
  if (index % 10 === 0) item["scores"] = { NS: ["1", "2.5"] }
  if (index % 11 === 0) item["nested"] = { M: { level: n("1"), list: { L: [s("a"), n("2"), { BOOL: false }, { NULL: true }, { M: { deep: s("yes") } }] } } }
  if (index % 13 === 0) item["mixed"] = index % 2 === 0 ? s("text") : n("13")
  if (index % 17 === 0) item["nothing"] = { NULL: true }
  return item
}

/** What each item should read back as from DuckDB, by the documented mapping. */
const expectedRow = (item: Record<string, AttributeValue>): Record<string, unknown> => {
  const value = (name: string) => item[name]
  const json = (name: string, expected: unknown) => (value(name) === undefined ? null : expected)
  const blob = value("blob")?.B
  return {
    pk: value("pk")?.S,
    sk: Number(value("sk")?.N),
    name: value("name")?.S,
    count: value("count") === undefined ? null : Number(value("count")?.N),
    price: value("price") === undefined ? null : Number(value("price")?.N),
    big: value("big")?.N ?? null,
    flag: value("flag")?.BOOL ?? null,
    blob: blob === undefined ? null : Buffer.from(blob).toString("base64"),
    tags: json("tags", value("tags")?.SS),
    scores: json("scores", [1, 2.5]),
    nested: json("nested", { level: 1, list: ["a", 2, false, null, { deep: "yes" }] }),
    mixed: json("mixed", value("mixed")?.S ?? Number(value("mixed")?.N)),
    nothing: null
  }
}

const JSON_COLUMNS = ["tags", "scores", "nested", "mixed"]

const createTableWithBackup = (table: string, items: ReadonlyArray<Record<string, AttributeValue>>) =>
  Effect.map(tableWithBackup(table, { partition: ["pk", "S"], sort: ["sk", "N"] }, items), (seeded) => seeded.backupArn)

const backupArnsOf = (table: string) =>
  Effect.flatMap(DynamoDb, (dynamodb) =>
    awsCall("dynamodb:ListBackups", (abortSignal) => dynamodb.send(new ListBackupsCommand({ TableName: table }), { abortSignal }))
  ).pipe(Effect.map((result) => (result.BackupSummaries ?? []).map((summary) => summary.BackupArn)))

const tableArn = (table: string): string => `arn:aws:dynamodb:${EMULATOR_REGION}:${EMULATOR_ACCOUNT}:table/${table}`

const sendDynamoDbBackup = (backupArn: string, table: string, vault: string) =>
  sendRecoveryPointEvent({ recoveryPointArn: backupArn, resourceArn: tableArn(table), resourceType: "DynamoDB", vault })

/** Waits until the exporter's queue holds no message, visible or in flight. */
const queueDrained = Effect.gen(function* () {
  const sqs = yield* Sqs
  for (let attempt = 0; attempt < 120; attempt += 1) {
    const attributes = yield* awsCall("sqs:GetQueueAttributes", (abortSignal) =>
      sqs.send(
        new GetQueueAttributesCommand({ QueueUrl: local.stack.queues.exporter?.url, AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"] }),
        { abortSignal }
      )
    )
    const pending = Number(attributes.Attributes?.ApproximateNumberOfMessages ?? "0") + Number(attributes.Attributes?.ApproximateNumberOfMessagesNotVisible ?? "0")
    if (pending === 0) return true
    yield* Effect.sleep("250 millis")
  }
  return false
})

beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), "export-test-"))
  local = await startLocalStack({ name: "export-test", policy, services: ["exporter"] })
})

afterAll(async () => {
  await local?.stop()
  rmSync(scratch, { recursive: true, force: true })
})

describe("the DynamoDB Parquet export on the emulator", () => {
  const items = Array.from({ length: ITEM_COUNT }, (_, index) => makeItem(index))
  let backupArn = ""

  it("exports a backup to Parquet that DuckDB reads back item for item, and deletes the temporary table", async () => {
    // Prepare
    backupArn = await run(createTableWithBackup("orders", items))
    // Act
    await run(sendDynamoDbBackup(backupArn, "orders", "export-dynamodb"))
    const record = await run(waitForStep(local.stack.ledgerTable, backupArn, "export:parquet", "3 minutes"))
    // Assess: the outcome
    assert.strictEqual(record["status"], "succeeded", String(record["reason"]))
    const outcome = record["outcome"]
    assert.strictEqual(outcome.format, "parquet")
    assert.strictEqual(outcome.itemCount, ITEM_COUNT)
    assert.isTrue(outcome.verified)
    assert.isFalse(outcome.sourceDeleted)
    assert.match(outcome.location.key, /^exports\/dynamodb\/orders\/[^/]+\/data\.parquet$/)
    // Assess: the bytes are those the checksum was computed over
    const file = join(scratch, "orders.parquet")
    download(outcome.location.bucket, outcome.location.key, file)
    assert.strictEqual(createHash("sha256").update(readFileSync(file)).digest("base64"), outcome.checksum.value)
    // Assess: DuckDB's column types and every item
    const read = readWithDuckDb(file)
    assert.deepInclude(read.types, { pk: "VARCHAR", sk: "BIGINT", name: "VARCHAR", count: "BIGINT", price: "DOUBLE", big: "VARCHAR", flag: "BOOLEAN", blob: "BLOB", nested: "JSON" })
    const expected = [...items].sort((a, b) => (a["pk"]?.S ?? "").localeCompare(b["pk"]?.S ?? "") || Number(a["sk"]?.N) - Number(b["sk"]?.N)).map(expectedRow)
    const actual = read.rows.map((row) =>
      Object.fromEntries(Object.entries(row).map(([name, cell]) => [name, JSON_COLUMNS.includes(name) && typeof cell === "string" ? JSON.parse(cell) : cell]))
    )
    assert.strictEqual(actual.length, ITEM_COUNT)
    actual.forEach((row, index) => assert.deepStrictEqual(row, expected[index], `item ${index}`))
    // Assess: the manifest beside it
    const manifestFile = join(scratch, "orders.manifest.json")
    download(outcome.manifest.bucket, outcome.manifest.key, manifestFile)
    const manifest = JSON.parse(readFileSync(manifestFile, "utf8"))
    assert.strictEqual(manifest.itemCount, ITEM_COUNT)
    assert.strictEqual(manifest.checksum.value, outcome.checksum.value)
    assert.deepStrictEqual(manifest.columns.slice(0, 2).map((column: { name: string }) => column.name), ["pk", "sk"])
    // Assess: no temporary table left, the source table and its backup kept
    const tables = await run(Effect.flatMap(DynamoDb, (dynamodb) => awsCall("dynamodb:ListTables", (abortSignal) => dynamodb.send(new ListTablesCommand({}), { abortSignal }))))
    assert.deepStrictEqual((tables.TableNames ?? []).filter((name) => name.startsWith("backup-actions-export-")), [])
    assert.include(await run(backupArnsOf("orders")), backupArn)
  })

  it("does nothing when the same event is delivered again", async () => {
    // Prepare: an event for another recovery point, sent after the duplicate, marks when the duplicate was handled
    const marker = `${tableArn("orders")}/backup/01700000000000-0marker0`
    // Act
    await run(sendDynamoDbBackup(backupArn, "orders", "export-dynamodb"))
    await run(sendDynamoDbBackup(marker, "orders", "export-dynamodb"))
    await run(waitForStep(local.stack.ledgerTable, marker, "export:parquet", "3 minutes"))
    const drained = await run(queueDrained)
    // Assess
    assert.isTrue(drained)
    const record = await run(waitForStep(local.stack.ledgerTable, backupArn, "export:parquet"))
    assert.strictEqual(record["attempts"], 1)
    assert.strictEqual(record["status"], "succeeded")
  })

  it("fails with a clear reason for a backup that does not exist, deleting nothing", async () => {
    // Prepare
    const missing = `${tableArn("orders")}/backup/01700000000000-deadbeef`
    // Act
    await run(sendDynamoDbBackup(missing, "orders", "export-and-delete"))
    const record = await run(waitForStep(local.stack.ledgerTable, missing, "export:parquet", "3 minutes"))
    // Assess
    assert.strictEqual(record["status"], "failed")
    assert.strictEqual(record["reason"], `backup ${missing}: does not exist`)
    assert.strictEqual(record["outcome"].reason, record["reason"])
    assert.isFalse(record["outcome"].sourceDeleted)
    assert.include(await run(backupArnsOf("orders")), backupArn)
  })

  it("deletes the backup after a verified export when the policy asks", async () => {
    // Prepare
    const doomed = await run(createTableWithBackup("sessions", items.slice(0, 30)))
    // Act
    await run(sendDynamoDbBackup(doomed, "sessions", "export-and-delete"))
    const record = await run(waitForStep(local.stack.ledgerTable, doomed, "export:parquet", "3 minutes"))
    // Assess
    assert.strictEqual(record["status"], "succeeded", String(record["reason"]))
    assert.isTrue(record["outcome"].verified)
    assert.isTrue(record["outcome"].sourceDeleted)
    assert.notInclude(await run(backupArnsOf("sessions")), doomed)
  })
})

describe("the RDS snapshot export on the emulator", () => {
  const createSnapshot = (instance: string) =>
    Effect.map(
      dbSnapshotOf(instance, { DBInstanceClass: "db.t3.micro", Engine: "postgres", AllocatedStorage: 20, MasterUsername: "admin", MasterUserPassword: "not-a-secret-1" }),
      (seeded) => seeded.snapshotArn
    )

  const sendSnapshot = (snapshotArn: string, instance: string, vault: string) =>
    sendRecoveryPointEvent({ recoveryPointArn: snapshotArn, resourceArn: `arn:aws:rds:${EMULATOR_REGION}:${EMULATOR_ACCOUNT}:db:${instance}`, resourceType: "RDS", vault })

  it("starts an export task with the policy's key, role, prefix and tables, and reports it complete", async () => {
    // Prepare
    await run(
      Effect.gen(function* () {
        const kms = yield* Kms
        const key = yield* awsCall("kms:CreateKey", (abortSignal) => kms.send(new CreateKeyCommand({ Description: "export test" }), { abortSignal }))
        yield* awsCall("kms:CreateAlias", (abortSignal) => kms.send(new CreateAliasCommand({ AliasName: "alias/export-test", TargetKeyId: key.KeyMetadata?.KeyId }), { abortSignal }))
      })
    )
    const snapshotArn = await run(createSnapshot("shop-db"))
    // Act
    await run(sendSnapshot(snapshotArn, "shop-db", "rds-export"))
    const record = await run(waitForStep(local.stack.ledgerTable, snapshotArn, "export:native", "3 minutes"))
    // Assess: the outcome
    assert.strictEqual(record["status"], "succeeded", String(record["reason"]))
    const outcome = record["outcome"]
    assert.strictEqual(outcome.kind, "rds")
    assert.strictEqual(outcome.format, "parquet")
    assert.match(outcome.exportId, /^ba-shop-db-snapshot-[0-9a-f]{10}-a1$/)
    assert.strictEqual(outcome.location.key, `exports/rds/${outcome.exportId}/`)
    assert.isFalse(outcome.sourceDeleted)
    // Assess: the task as RDS has it
    const tasks = await run(
      Effect.flatMap(Rds, (rds) =>
        awsCall("rds:DescribeExportTasks", (abortSignal) => rds.send(new DescribeExportTasksCommand({ ExportTaskIdentifier: outcome.exportId }), { abortSignal }))
      )
    )
    const task = tasks.ExportTasks?.[0]
    assert.strictEqual(task?.SourceArn, snapshotArn)
    assert.strictEqual(task?.S3Bucket, local.stack.artifactBucket)
    assert.strictEqual(task?.S3Prefix, "exports/rds")
    assert.strictEqual(task?.KmsKeyId, "alias/export-test")
    assert.strictEqual(task?.IamRoleArn, ROLE)
    assert.deepStrictEqual(task?.ExportOnly, ["shop", "shop.orders"])
  })

  it("fails with the reason when the policy's KMS key does not exist, starting nothing and keeping the snapshot", async () => {
    // Prepare
    const snapshotArn = await run(createSnapshot("billing-db"))
    // Act
    await run(sendSnapshot(snapshotArn, "billing-db", "rds-missing-key"))
    const record = await run(waitForStep(local.stack.ledgerTable, snapshotArn, "export:native", "3 minutes"))
    // Assess
    assert.strictEqual(record["status"], "failed")
    assert.strictEqual(record["reason"], "KMS key alias/no-such-key does not exist")
    const state = await run(
      Effect.flatMap(Rds, (rds) =>
        Effect.all({
          tasks: awsCall("rds:DescribeExportTasks", (abortSignal) => rds.send(new DescribeExportTasksCommand({}), { abortSignal })),
          snapshots: awsCall("rds:DescribeDBSnapshots", (abortSignal) => rds.send(new DescribeDBSnapshotsCommand({ DBSnapshotIdentifier: "billing-db-snapshot" }), { abortSignal }))
        })
      )
    )
    assert.deepStrictEqual((state.tasks.ExportTasks ?? []).filter((task) => task.SourceArn === snapshotArn), [])
    assert.strictEqual(state.snapshots.DBSnapshots?.length, 1)
  })
})
