import { BatchWriteItemCommand, CreateBackupCommand, CreateTableCommand, type AttributeValue } from "@aws-sdk/client-dynamodb"
import { CreateImageCommand, DescribeImagesCommand, RunInstancesCommand } from "@aws-sdk/client-ec2"
import { CreateDBInstanceCommand, CreateDBSnapshotCommand, type CreateDBInstanceCommandInput } from "@aws-sdk/client-rds"
import { Effect } from "effect"
import { DynamoDb, Ec2, Rds, awsCall } from "@backup-actions/aws"
import { EMULATOR_ACCOUNT, EMULATOR_REGION } from "@backup-actions/local"

/** The key of a table: partition and sort attributes with their types. */
export interface TableKey {
  readonly partition: readonly [name: string, type: "S" | "N"]
  readonly sort: readonly [name: string, type: "S" | "N"]
}

/** A DynamoDB table holding the items, and an on-demand backup of it. */
export const tableWithBackup = (table: string, key: TableKey, items: ReadonlyArray<Record<string, AttributeValue>>) =>
  Effect.gen(function* () {
    const dynamodb = yield* DynamoDb
    yield* awsCall("dynamodb:CreateTable", (abortSignal) =>
      dynamodb.send(
        new CreateTableCommand({
          TableName: table,
          BillingMode: "PAY_PER_REQUEST",
          KeySchema: [
            { AttributeName: key.partition[0], KeyType: "HASH" },
            { AttributeName: key.sort[0], KeyType: "RANGE" }
          ],
          AttributeDefinitions: [
            { AttributeName: key.partition[0], AttributeType: key.partition[1] },
            { AttributeName: key.sort[0], AttributeType: key.sort[1] }
          ]
        }),
        { abortSignal }
      )
    )
    for (let start = 0; start < items.length; start += 25) {
      const batch = items.slice(start, start + 25).map((item) => ({ PutRequest: { Item: item } }))
      yield* awsCall("dynamodb:BatchWriteItem", (abortSignal) => dynamodb.send(new BatchWriteItemCommand({ RequestItems: { [table]: batch } }), { abortSignal }))
    }
    const backup = yield* awsCall("dynamodb:CreateBackup", (abortSignal) =>
      dynamodb.send(new CreateBackupCommand({ TableName: table, BackupName: `${table}-backup` }), { abortSignal })
    )
    return {
      backupArn: backup.BackupDetails?.BackupArn ?? "",
      tableArn: `arn:aws:dynamodb:${EMULATOR_REGION}:${EMULATOR_ACCOUNT}:table/${table}`
    }
  })

/** A DynamoDB table of orders with varied item shapes, and an on-demand backup of it. */
export const seedDynamoDbBackup = (table: string, itemCount: number) => {
  const item = (index: number): Record<string, AttributeValue> => ({
    customer: { S: `customer-${index % 17}` },
    order: { N: String(index) },
    total: { N: (index * 3.25).toFixed(2) },
    paid: { BOOL: index % 3 !== 0 },
    lines: { L: [{ M: { sku: { S: `sku-${index % 5}` }, quantity: { N: String(1 + (index % 4)) } } }] },
    ...(index % 4 === 0 ? { note: { S: `gift, "wrapped" #${index}` } } : {})
  })
  return tableWithBackup(table, { partition: ["customer", "S"], sort: ["order", "N"] }, Array.from({ length: itemCount }, (_, index) => item(index)))
}

/** A DB instance made as described (the emulator runs no engine behind it) and a manual snapshot of it. */
export const dbSnapshotOf = (instance: string, described: Omit<CreateDBInstanceCommandInput, "DBInstanceIdentifier">) =>
  Effect.gen(function* () {
    const rds = yield* Rds
    yield* awsCall("rds:CreateDBInstance", (abortSignal) => rds.send(new CreateDBInstanceCommand({ ...described, DBInstanceIdentifier: instance }), { abortSignal }))
    const snapshot = yield* awsCall("rds:CreateDBSnapshot", (abortSignal) =>
      rds.send(new CreateDBSnapshotCommand({ DBInstanceIdentifier: instance, DBSnapshotIdentifier: `${instance}-snapshot` }), { abortSignal })
    )
    return {
      snapshotArn: snapshot.DBSnapshot?.DBSnapshotArn ?? "",
      instanceArn: `arn:aws:rds:${EMULATOR_REGION}:${EMULATOR_ACCOUNT}:db:${instance}`
    }
  })

/** A PostgreSQL DB instance and a manual snapshot of it. */
export const seedRdsSnapshot = (instance: string) =>
  dbSnapshotOf(instance, { DBInstanceClass: "db.t4g.micro", Engine: "postgres", AllocatedStorage: 20, MasterUsername: "demo", ManageMasterUserPassword: true })

/**
 * An AMI made with CreateImage from a running instance, as AWS Backup makes one of an EC2
 * instance, with the snapshots its block device mapping names.
 */
export const seedAmi = (name: string, tags: Readonly<Record<string, string>> = {}) =>
  Effect.gen(function* () {
    const ec2 = yield* Ec2
    const base = yield* awsCall("ec2:DescribeImages", (abortSignal) => ec2.send(new DescribeImagesCommand({ Owners: ["amazon"] }), { abortSignal }))
    const instances = yield* awsCall("ec2:RunInstances", (abortSignal) =>
      ec2.send(new RunInstancesCommand({ ImageId: base.Images?.[0]?.ImageId, MinCount: 1, MaxCount: 1, InstanceType: "t3.micro" }), { abortSignal })
    )
    const instanceId = instances.Instances?.[0]?.InstanceId ?? ""
    const tagList = Object.entries(tags).map(([Key, Value]) => ({ Key, Value }))
    const created = yield* awsCall("ec2:CreateImage", (abortSignal) =>
      ec2.send(
        new CreateImageCommand({ InstanceId: instanceId, Name: name, ...(tagList.length > 0 ? { TagSpecifications: [{ ResourceType: "image", Tags: tagList }] } : {}) }),
        { abortSignal }
      )
    )
    const imageId = created.ImageId ?? ""
    const described = yield* awsCall("ec2:DescribeImages", (abortSignal) => ec2.send(new DescribeImagesCommand({ ImageIds: [imageId] }), { abortSignal }))
    const snapshotIds = (described.Images?.[0]?.BlockDeviceMappings ?? []).flatMap((mapping) => (mapping.Ebs?.SnapshotId === undefined ? [] : [mapping.Ebs.SnapshotId]))
    return {
      imageId,
      instanceId,
      snapshotIds,
      imageArn: `arn:aws:ec2:${EMULATOR_REGION}::image/${imageId}`,
      instanceArn: `arn:aws:ec2:${EMULATOR_REGION}:${EMULATOR_ACCOUNT}:instance/${instanceId}`
    }
  })
