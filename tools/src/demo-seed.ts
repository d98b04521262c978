import { BatchWriteItemCommand, CreateBackupCommand, CreateTableCommand, type AttributeValue } from "@aws-sdk/client-dynamodb"
import { CreateDBInstanceCommand, CreateDBSnapshotCommand } from "@aws-sdk/client-rds"
import { Effect } from "effect"
import { DynamoDb, Rds, awsCall } from "@backup-actions/aws"
import { EMULATOR_ACCOUNT, EMULATOR_REGION } from "@backup-actions/local"

/** A DynamoDB table of orders with varied item shapes, and an on-demand backup of it. */
export const seedDynamoDbBackup = (table: string, itemCount: number) =>
  Effect.gen(function* () {
    const dynamodb = yield* DynamoDb
    yield* awsCall("dynamodb:CreateTable", (abortSignal) =>
      dynamodb.send(
        new CreateTableCommand({
          TableName: table,
          BillingMode: "PAY_PER_REQUEST",
          KeySchema: [
            { AttributeName: "customer", KeyType: "HASH" },
            { AttributeName: "order", KeyType: "RANGE" }
          ],
          AttributeDefinitions: [
            { AttributeName: "customer", AttributeType: "S" },
            { AttributeName: "order", AttributeType: "N" }
          ]
        }),
        { abortSignal }
      )
    )
    const item = (index: number): Record<string, AttributeValue> => ({
      customer: { S: `customer-${index % 17}` },
      order: { N: String(index) },
      total: { N: (index * 3.25).toFixed(2) },
      paid: { BOOL: index % 3 !== 0 },
      lines: { L: [{ M: { sku: { S: `sku-${index % 5}` }, quantity: { N: String(1 + (index % 4)) } } }] },
      ...(index % 4 === 0 ? { note: { S: `gift, "wrapped" #${index}` } } : {})
    })
    for (let start = 0; start < itemCount; start += 25) {
      const batch = Array.from({ length: Math.min(25, itemCount - start) }, (_, offset) => ({ PutRequest: { Item: item(start + offset) } }))
      yield* awsCall("dynamodb:BatchWriteItem", (abortSignal) => dynamodb.send(new BatchWriteItemCommand({ RequestItems: { [table]: batch } }), { abortSignal }))
    }
    const backup = yield* awsCall("dynamodb:CreateBackup", (abortSignal) =>
      dynamodb.send(new CreateBackupCommand({ TableName: table, BackupName: `${table}-demo` }), { abortSignal })
    )
    return {
      backupArn: backup.BackupDetails?.BackupArn ?? "",
      tableArn: `arn:aws:dynamodb:${EMULATOR_REGION}:${EMULATOR_ACCOUNT}:table/${table}`
    }
  })

/** A PostgreSQL DB instance (the emulator runs no engine behind it) and a manual snapshot of it. */
export const seedRdsSnapshot = (instance: string) =>
  Effect.gen(function* () {
    const rds = yield* Rds
    yield* awsCall("rds:CreateDBInstance", (abortSignal) =>
      rds.send(
        new CreateDBInstanceCommand({
          DBInstanceIdentifier: instance,
          DBInstanceClass: "db.t4g.micro",
          Engine: "postgres",
          AllocatedStorage: 20,
          MasterUsername: "demo",
          ManageMasterUserPassword: true
        }),
        { abortSignal }
      )
    )
    const snapshot = yield* awsCall("rds:CreateDBSnapshot", (abortSignal) =>
      rds.send(new CreateDBSnapshotCommand({ DBInstanceIdentifier: instance, DBSnapshotIdentifier: `${instance}-demo` }), { abortSignal })
    )
    return {
      snapshotArn: snapshot.DBSnapshot?.DBSnapshotArn ?? "",
      instanceArn: `arn:aws:rds:${EMULATOR_REGION}:${EMULATOR_ACCOUNT}:db:${instance}`
    }
  })
