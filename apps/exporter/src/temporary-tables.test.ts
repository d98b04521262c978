import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import {
  CreateBackupCommand,
  CreateTableCommand,
  DeleteTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
  ListTablesCommand,
  ListTagsOfResourceCommand,
  RestoreTableFromBackupCommand,
  TableAlreadyExistsException,
  TagResourceCommand
} from "@aws-sdk/client-dynamodb"
import { mockClient } from "aws-sdk-client-mock"
import { Effect, TestClock } from "effect"
import { DynamoDb, awsCall, undefinedWhenNotFound } from "@backup-actions/aws"
import { type Emulator, emulatorClients, startEmulator } from "@backup-actions/local"
import { parseDynamoDbBackupArn, type DynamoDbBackupRef } from "./arns"
import { CREATED_AT_TAG, MANAGED_TAG, RECOVERY_POINT_TAG, TEMPORARY_TABLE_PREFIX, sweepTemporaryTables, temporaryTable, temporaryTableName } from "./temporary-tables"

let emulator: Emulator
beforeAll(async () => {
  emulator = await startEmulator({ name: "exporter-temporary-tables-test" })
})
afterAll(() => emulator.stop())

const createTable = (name: string) =>
  Effect.flatMap(DynamoDb, (dynamodb) =>
    awsCall("dynamodb:CreateTable", (abortSignal) =>
      dynamodb.send(
        new CreateTableCommand({
          TableName: name,
          AttributeDefinitions: [{ AttributeName: "id", AttributeType: "S" }],
          KeySchema: [{ AttributeName: "id", KeyType: "HASH" }],
          BillingMode: "PAY_PER_REQUEST"
        }),
        { abortSignal }
      )
    )
  ).pipe(Effect.map((created) => created.TableDescription?.TableArn ?? ""))

const tableNames = Effect.flatMap(DynamoDb, (dynamodb) => awsCall("dynamodb:ListTables", (abortSignal) => dynamodb.send(new ListTablesCommand({}), { abortSignal }))).pipe(
  Effect.map((listed) => listed.TableNames ?? [])
)

const tagsOf = (tableArn: string) =>
  Effect.flatMap(DynamoDb, (dynamodb) =>
    awsCall("dynamodb:ListTagsOfResource", (abortSignal) => dynamodb.send(new ListTagsOfResourceCommand({ ResourceArn: tableArn }), { abortSignal }))
  ).pipe(Effect.map((listed) => Object.fromEntries((listed.Tags ?? []).map((tag) => [tag.Key ?? "", tag.Value ?? ""]))))

const backupRef = (table: string): DynamoDbBackupRef => {
  const ref = parseDynamoDbBackupArn(`arn:aws:dynamodb:us-east-1:123456789012:table/${table}/backup/01795314018286-5dbb244c`)
  if (ref === undefined) throw new Error("the test's backup ARN does not parse")
  return ref
}

describe("the temporary-table sweeper on the emulator", () => {
  it.effect("deletes temporary tables created before the limit, tagged or not, and keeps a younger one and every table without the prefix", () =>
    Effect.gen(function* () {
      // Prepare: an old user table, an old temporary table whose attempt died before tagging it,
      // an old tagged one, then (after the limit) a young one
      yield* createTable("orders-sweep")
      yield* createTable(`${TEMPORARY_TABLE_PREFIX}old-untagged`)
      const taggedArn = yield* createTable(`${TEMPORARY_TABLE_PREFIX}old-tagged`)
      const dynamodb = yield* DynamoDb
      yield* awsCall("dynamodb:TagResource", (abortSignal) =>
        dynamodb.send(
          new TagResourceCommand({
            ResourceArn: taggedArn,
            Tags: [
              { Key: MANAGED_TAG, Value: "true" },
              { Key: RECOVERY_POINT_TAG, Value: "arn:aws:dynamodb:us-east-1:123456789012:table/orders/backup/1" }
            ]
          }),
          { abortSignal }
        )
      )
      yield* Effect.promise(() => new Promise((wake) => setTimeout(wake, 50)))
      const limit = Date.now()
      yield* Effect.promise(() => new Promise((wake) => setTimeout(wake, 50)))
      yield* createTable(`${TEMPORARY_TABLE_PREFIX}young`)
      yield* TestClock.setTime(limit)
      // Act
      const deleted = yield* sweepTemporaryTables("0 seconds")
      // Assess
      assert.sameMembers([...deleted], [`${TEMPORARY_TABLE_PREFIX}old-untagged`, `${TEMPORARY_TABLE_PREFIX}old-tagged`])
      const remaining = yield* tableNames
      assert.includeMembers(remaining, ["orders-sweep", `${TEMPORARY_TABLE_PREFIX}young`])
      assert.notInclude(remaining, `${TEMPORARY_TABLE_PREFIX}old-untagged`)
      assert.notInclude(remaining, `${TEMPORARY_TABLE_PREFIX}old-tagged`)
      // Act again: nothing left that is old enough
      assert.deepStrictEqual(yield* sweepTemporaryTables("0 seconds"), [])
    }).pipe(Effect.provide(emulatorClients(emulator.endpoint)))
  )
})

describe("the temporary-table sweeper's requests", () => {
  it.effect("lists every page, describes and deletes only prefixed tables, and leaves a table without the prefix alone", () =>
    Effect.gen(function* () {
      // Prepare: two pages of tables; the limit lies between the two prefixed tables' creation times
      const client = new DynamoDBClient({ region: "us-east-1" })
      const mock = mockClient(client)
      const old = `${TEMPORARY_TABLE_PREFIX}01795314018286-5dbb244c-1-orders`
      const young = `${TEMPORARY_TABLE_PREFIX}01795314018286-5dbb244c-2-orders`
      const arnOf = (name: string) => `arn:aws:dynamodb:us-east-1:123456789012:table/${name}`
      mock.on(ListTablesCommand, { ExclusiveStartTableName: undefined }).resolves({ TableNames: ["backup-actions-ledger", old], LastEvaluatedTableName: old })
      mock.on(ListTablesCommand, { ExclusiveStartTableName: old }).resolves({ TableNames: [young, "orders"] })
      mock.on(DescribeTableCommand, { TableName: old }).resolves({ Table: { TableName: old, TableArn: arnOf(old), TableStatus: "ACTIVE", CreationDateTime: new Date("2026-01-01T00:00:00Z") } })
      mock.on(DescribeTableCommand, { TableName: young }).resolves({ Table: { TableName: young, TableArn: arnOf(young), TableStatus: "ACTIVE", CreationDateTime: new Date("2026-01-02T11:00:00Z") } })
      mock.on(ListTagsOfResourceCommand).resolves({ Tags: [{ Key: MANAGED_TAG, Value: "true" }, { Key: CREATED_AT_TAG, Value: "2026-01-01T00:00:00.000Z" }] })
      mock.on(DeleteTableCommand).resolves({})
      yield* TestClock.setTime(new Date("2026-01-02T12:00:00Z").getTime())
      // Act
      const deleted = yield* sweepTemporaryTables("6 hours").pipe(Effect.provideService(DynamoDb, client))
      // Assess
      assert.deepStrictEqual(deleted, [old])
      assert.deepStrictEqual(
        mock.commandCalls(ListTablesCommand).map((call) => call.args[0].input),
        [{ ExclusiveStartTableName: undefined }, { ExclusiveStartTableName: old }]
      )
      assert.deepStrictEqual(
        mock.commandCalls(DescribeTableCommand).map((call) => call.args[0].input),
        [{ TableName: old }, { TableName: young }]
      )
      assert.deepStrictEqual(
        mock.commandCalls(ListTagsOfResourceCommand).map((call) => call.args[0].input),
        [{ ResourceArn: arnOf(old), NextToken: undefined }, { ResourceArn: arnOf(young), NextToken: undefined }]
      )
      assert.deepStrictEqual(mock.commandCalls(TagResourceCommand), [])
      assert.deepStrictEqual(
        mock.commandCalls(DeleteTableCommand).map((call) => call.args[0].input),
        [{ TableName: old }]
      )
    })
  )

  it.effect("tags an untagged leftover as the project's before deleting it, so that the tag condition on DeleteTable holds", () =>
    Effect.gen(function* () {
      // Prepare
      const client = new DynamoDBClient({ region: "us-east-1" })
      const mock = mockClient(client)
      const name = `${TEMPORARY_TABLE_PREFIX}01795314018286-5dbb244c-1-orders`
      const arn = `arn:aws:dynamodb:us-east-1:123456789012:table/${name}`
      mock.on(ListTablesCommand).resolves({ TableNames: [name] })
      mock.on(DescribeTableCommand).resolves({ Table: { TableName: name, TableArn: arn, TableStatus: "ACTIVE", CreationDateTime: new Date("2026-01-01T00:00:00Z") } })
      mock.on(ListTagsOfResourceCommand).resolves({ Tags: [] })
      mock.on(TagResourceCommand).resolves({})
      mock.on(DeleteTableCommand).resolves({})
      yield* TestClock.setTime(new Date("2026-01-03T00:00:00Z").getTime())
      // Act
      const deleted = yield* sweepTemporaryTables("1 day").pipe(Effect.provideService(DynamoDb, client))
      // Assess
      assert.deepStrictEqual(deleted, [name])
      assert.deepStrictEqual(
        mock.commandCalls(TagResourceCommand).map((call) => call.args[0].input),
        [{ ResourceArn: arn, Tags: [{ Key: MANAGED_TAG, Value: "true" }] }]
      )
      assert.deepStrictEqual(
        mock.commandCalls(DeleteTableCommand).map((call) => call.args[0].input),
        [{ TableName: name }]
      )
    })
  )

  it.effect("leaves a table that is in use to the next sweep and still sweeps the others", () =>
    Effect.gen(function* () {
      // Prepare
      const client = new DynamoDBClient({ region: "us-east-1" })
      const mock = mockClient(client)
      const busy = `${TEMPORARY_TABLE_PREFIX}busy`
      const idle = `${TEMPORARY_TABLE_PREFIX}idle`
      mock.on(ListTablesCommand).resolves({ TableNames: [busy, idle] })
      for (const name of [busy, idle]) {
        mock
          .on(DescribeTableCommand, { TableName: name })
          .resolves({ Table: { TableName: name, TableArn: `arn:aws:dynamodb:us-east-1:123456789012:table/${name}`, TableStatus: "ACTIVE", CreationDateTime: new Date(0) } })
      }
      mock.on(ListTagsOfResourceCommand).resolves({ Tags: [{ Key: MANAGED_TAG, Value: "true" }] })
      mock
        .on(DeleteTableCommand, { TableName: busy })
        .rejects(Object.assign(new Error("Attempt to change a resource which is still in use"), { name: "ResourceInUseException", $metadata: { httpStatusCode: 400 } }))
      mock.on(DeleteTableCommand, { TableName: idle }).resolves({})
      yield* TestClock.setTime(Date.parse("2026-01-01T00:00:00Z"))
      // Act
      const deleted = yield* sweepTemporaryTables("1 hour").pipe(Effect.provideService(DynamoDb, client))
      // Assess
      assert.deepStrictEqual(deleted, [idle])
    })
  )
})

describe("a temporary table for an export", () => {
  it.effect("is restored under the project's prefix, tagged, and deleted when its scope closes; a lost reply's retry takes the same table", () =>
    Effect.gen(function* () {
      // Prepare: a table with a backup
      yield* createTable("orders-export")
      const dynamodb = yield* DynamoDb
      const backup = yield* awsCall("dynamodb:CreateBackup", (abortSignal) =>
        dynamodb.send(new CreateBackupCommand({ TableName: "orders-export", BackupName: "nightly" }), { abortSignal })
      )
      const ref = parseDynamoDbBackupArn(backup.BackupDetails?.BackupArn ?? "")
      assert.isDefined(ref)
      if (ref === undefined) return
      const recoveryPointArn = ref.backupArn
      // Act: the table, then the same attempt again (as a retry after a lost reply would)
      const [first, again, tags] = yield* Effect.scoped(
        Effect.gen(function* () {
          const table = yield* temporaryTable(ref, recoveryPointArn, 4)
          const retried = yield* temporaryTable(ref, recoveryPointArn, 4)
          return [table, retried, yield* tagsOf(table.arn)] as const
        })
      )
      // Assess
      assert.strictEqual(first.name, temporaryTableName(ref, 4))
      assert.isTrue(first.name.startsWith(TEMPORARY_TABLE_PREFIX))
      assert.deepStrictEqual(again, first)
      assert.strictEqual(tags[MANAGED_TAG], "true")
      assert.strictEqual(tags[RECOVERY_POINT_TAG], recoveryPointArn)
      assert.isTrue(Number.isFinite(Date.parse(tags[CREATED_AT_TAG] ?? "")))
      const after = yield* undefinedWhenNotFound(
        awsCall("dynamodb:DescribeTable", (abortSignal) => dynamodb.send(new DescribeTableCommand({ TableName: first.name }), { abortSignal }))
      )
      assert.isUndefined(after?.Table)
    }).pipe(Effect.provide(emulatorClients(emulator.endpoint)))
  )

  it.live("takes the table a lost reply made when the retried restore finds it there, and tags it by the described ARN", () =>
    Effect.gen(function* () {
      // Prepare: the first restore fails with a 500 after DynamoDB made the table; the retry finds it
      const client = new DynamoDBClient({ region: "us-east-1" })
      const mock = mockClient(client)
      const ref = backupRef("orders")
      const name = temporaryTableName(ref, 2)
      const arn = `arn:aws:dynamodb:us-east-1:123456789012:table/${name}`
      mock
        .on(RestoreTableFromBackupCommand)
        .rejectsOnce(Object.assign(new Error("Internal server error"), { name: "InternalServerError", $metadata: { httpStatusCode: 500 } }))
        .rejects(new TableAlreadyExistsException({ message: `Table already exists: ${name}`, $metadata: { httpStatusCode: 400 } }))
      mock.on(DescribeTableCommand).resolves({ Table: { TableName: name, TableArn: arn, TableStatus: "CREATING" } })
      mock.on(TagResourceCommand).resolves({})
      mock.on(DeleteTableCommand).resolves({})
      // Act
      const table = yield* Effect.scoped(temporaryTable(ref, ref.backupArn, 2)).pipe(Effect.provideService(DynamoDb, client))
      // Assess
      assert.deepStrictEqual(table, { name, arn })
      const restores = mock.commandCalls(RestoreTableFromBackupCommand).map((call) => call.args[0].input)
      assert.strictEqual(restores.length, 2)
      assert.deepStrictEqual(restores[0], {
        TargetTableName: name,
        BackupArn: ref.backupArn,
        BillingModeOverride: "PAY_PER_REQUEST",
        GlobalSecondaryIndexOverride: [],
        LocalSecondaryIndexOverride: []
      })
      assert.deepStrictEqual(restores[1], restores[0])
      const tagged = mock.commandCalls(TagResourceCommand).map((call) => call.args[0].input)
      assert.deepStrictEqual(tagged.map((input) => input.ResourceArn), [arn])
      assert.deepStrictEqual(
        tagged[0]?.Tags?.map((tag) => tag.Key),
        [MANAGED_TAG, RECOVERY_POINT_TAG, CREATED_AT_TAG]
      )
      assert.deepStrictEqual(
        mock.commandCalls(DeleteTableCommand).map((call) => call.args[0].input),
        [{ TableName: name }]
      )
    })
  )

  it.live("tags a table that DynamoDB does not find yet, or refuses while creating it, as soon as it accepts", () =>
    Effect.gen(function* () {
      // Prepare
      const client = new DynamoDBClient({ region: "us-east-1" })
      const mock = mockClient(client)
      const ref = backupRef("orders")
      const name = temporaryTableName(ref, 1)
      const arn = `arn:aws:dynamodb:us-east-1:123456789012:table/${name}`
      mock.on(RestoreTableFromBackupCommand).resolves({ TableDescription: { TableName: name, TableArn: arn, TableStatus: "CREATING" } })
      mock
        .on(TagResourceCommand)
        .rejectsOnce(Object.assign(new Error(`Requested resource not found: ResourcArn: ${arn} not found`), { name: "ResourceNotFoundException", $metadata: { httpStatusCode: 400 } }))
        .rejectsOnce(Object.assign(new Error("Attempt to change a resource which is still in use: Table is being created"), { name: "ResourceInUseException", $metadata: { httpStatusCode: 400 } }))
        .resolves({})
      mock.on(DeleteTableCommand).resolves({})
      // Act
      yield* Effect.scoped(temporaryTable(ref, ref.backupArn, 1)).pipe(Effect.provideService(DynamoDb, client))
      // Assess
      assert.strictEqual(mock.commandCalls(TagResourceCommand).length, 3)
    })
  )
})
