import { BatchWriteItemCommand, CreateBackupCommand, CreateTableCommand, type AttributeValue } from "@aws-sdk/client-dynamodb"
import { CreateImageCommand, DescribeImagesCommand, RunInstancesCommand } from "@aws-sdk/client-ec2"
import { CreateDBInstanceCommand, CreateDBSnapshotCommand } from "@aws-sdk/client-rds"
import { Effect } from "effect"
import { DynamoDb, Ec2, Rds, awsCall } from "@backup-actions/aws"
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
