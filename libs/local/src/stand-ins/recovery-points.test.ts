import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { CreateBackupCommand, CreateTableCommand, DeleteBackupCommand, DescribeBackupCommand, DynamoDBClient } from "@aws-sdk/client-dynamodb"
import { CreateImageCommand, CreateSnapshotCommand, CreateVolumeCommand, DescribeImagesCommand, DescribeSnapshotsCommand, EC2Client, RunInstancesCommand } from "@aws-sdk/client-ec2"
import {
  CreateDBInstanceCommand,
  CreateDBSnapshotCommand,
  DeleteDBClusterSnapshotCommand,
  DeleteDBSnapshotCommand,
  DescribeDBClusterSnapshotsCommand,
  DescribeDBSnapshotsCommand,
  RDSClient
} from "@aws-sdk/client-rds"
import { mockClient } from "aws-sdk-client-mock"
import { Effect, Layer } from "effect"
import { DynamoDb, Ec2, Rds, RecoveryPoints, awsCall, undefinedWhenNotFound, type RecoveryPointRef } from "@backup-actions/aws"
import { type Emulator, emulatorClients, startEmulator } from "../emulator"
import { LocalRecoveryPoints } from "./recovery-points"

describe("deleting a recovery point with mocked resources, where AWS Backup has none", () => {
  const layerWith = (clients: { readonly rds: RDSClient; readonly dynamodb: DynamoDBClient; readonly ec2: EC2Client }) =>
    LocalRecoveryPoints.pipe(
      Layer.provide(Layer.mergeAll(Layer.succeed(Rds, clients.rds), Layer.succeed(DynamoDb, clients.dynamodb), Layer.succeed(Ec2, clients.ec2)))
    )
  const clients = () => ({ rds: new RDSClient({ region: "us-east-1" }), dynamodb: new DynamoDBClient({ region: "us-east-1" }), ec2: new EC2Client({ region: "us-east-1" }) })

  it.effect("deletes the DB snapshot behind an RDS recovery point and the backup behind a DynamoDB one, and describes each after", () =>
    Effect.gen(function* () {
      // Prepare
      const { rds, dynamodb, ec2 } = clients()
      const rdsMock = mockClient(rds)
      rdsMock.on(DeleteDBSnapshotCommand).resolves({})
      rdsMock.on(DescribeDBSnapshotsCommand).resolves({ DBSnapshots: [{ DBSnapshotIdentifier: "orders-nightly", Status: "deleting" }] })
      const dynamodbMock = mockClient(dynamodb)
      dynamodbMock.on(DeleteBackupCommand).resolves({})
      const backupArn = "arn:aws:dynamodb:us-east-1:123456789012:table/orders/backup/01795314018286-5dbb244c"
      dynamodbMock.on(DescribeBackupCommand).resolves({
        BackupDescription: { BackupDetails: { BackupArn: backupArn, BackupName: "nightly", BackupStatus: "DELETED", BackupType: "USER", BackupCreationDateTime: new Date(0) } }
      })
      // Act
      const seen = yield* Effect.flatMap(RecoveryPoints, (points) =>
        Effect.all([
          points.delete({ recoveryPointArn: "arn:aws:rds:us-east-1:123456789012:snapshot:orders-nightly", backupVaultName: "Default" }),
          points.delete({ recoveryPointArn: backupArn, backupVaultName: "Default" })
        ])
      ).pipe(Effect.provide(layerWith({ rds, dynamodb, ec2 })))
      // Assess
      assert.deepStrictEqual(seen, ["deleting", "deleted"])
      assert.deepStrictEqual(rdsMock.commandCalls(DeleteDBSnapshotCommand).map((call) => call.args[0].input), [{ DBSnapshotIdentifier: "orders-nightly" }])
      assert.deepStrictEqual(rdsMock.commandCalls(DescribeDBSnapshotsCommand).map((call) => call.args[0].input), [{ DBSnapshotIdentifier: "orders-nightly" }])
      assert.deepStrictEqual(dynamodbMock.commandCalls(DeleteBackupCommand).map((call) => call.args[0].input), [{ BackupArn: backupArn }])
      assert.deepStrictEqual(dynamodbMock.commandCalls(DescribeBackupCommand).map((call) => call.args[0].input), [{ BackupArn: backupArn }])
    })
  )

  it.effect("deletes the DB cluster snapshot behind an Aurora recovery point, and describes it after", () =>
    Effect.gen(function* () {
      // Prepare
      const { rds, dynamodb, ec2 } = clients()
      const rdsMock = mockClient(rds)
      rdsMock.on(DeleteDBClusterSnapshotCommand).resolves({})
      rdsMock.on(DescribeDBClusterSnapshotsCommand).resolves({ DBClusterSnapshots: [] })
      // Act
      const seen = yield* Effect.flatMap(RecoveryPoints, (points) =>
        points.delete({ recoveryPointArn: "arn:aws:rds:us-east-1:123456789012:cluster-snapshot:awsbackup:job-0123", backupVaultName: "Default" })
      ).pipe(Effect.provide(layerWith({ rds, dynamodb, ec2 })))
      // Assess
      assert.strictEqual(seen, "deleted")
      assert.deepStrictEqual(rdsMock.commandCalls(DeleteDBClusterSnapshotCommand).map((call) => call.args[0].input), [{ DBClusterSnapshotIdentifier: "awsbackup:job-0123" }])
      assert.deepStrictEqual(rdsMock.commandCalls(DescribeDBClusterSnapshotsCommand).map((call) => call.args[0].input), [{ DBClusterSnapshotIdentifier: "awsbackup:job-0123" }])
      assert.deepStrictEqual(rdsMock.commandCalls(DeleteDBSnapshotCommand), [])
    })
  )

  it.effect("refuses a recovery point it cannot delete in AWS Backup's place, instead of pretending", () =>
    Effect.gen(function* () {
      // Act
      const error = yield* Effect.flip(
        Effect.flatMap(RecoveryPoints, (points) =>
          points.delete({ recoveryPointArn: "arn:aws:elasticfilesystem:us-east-1:123456789012:file-system/fs-1", backupVaultName: "Default" })
        ).pipe(Effect.provide(layerWith(clients())))
      )
      // Assess
      assert.strictEqual(error.code, "UnsupportedRecoveryPoint")
      assert.include(error.message, "fs-1")
    })
  )
})

describe("deleting a recovery point on the emulator, where AWS Backup has none", () => {
  let emulator: Emulator
  beforeAll(async () => {
    emulator = await startEmulator({ name: "recovery-points-test" })
  })
  afterAll(() => emulator.stop())

  const deleteTwice = (ref: RecoveryPointRef) =>
    Effect.flatMap(RecoveryPoints, (points) => Effect.all([points.delete(ref), points.delete(ref)])).pipe(Effect.provide(LocalRecoveryPoints))

  it.live("deletes an EBS snapshot, and says deleted again when asked a second time", () =>
    Effect.gen(function* () {
      // Prepare
      const ec2 = yield* Ec2
      const volume = yield* awsCall("ec2:CreateVolume", (abortSignal) =>
        ec2.send(new CreateVolumeCommand({ AvailabilityZone: "us-east-1a", Size: 1, VolumeType: "gp3" }), { abortSignal })
      )
      const snapshot = yield* awsCall("ec2:CreateSnapshot", (abortSignal) => ec2.send(new CreateSnapshotCommand({ VolumeId: volume.VolumeId ?? "" }), { abortSignal }))
      const snapshotId = snapshot.SnapshotId ?? ""
      const before = yield* awsCall("ec2:DescribeSnapshots", (abortSignal) => ec2.send(new DescribeSnapshotsCommand({ SnapshotIds: [snapshotId] }), { abortSignal }))
      assert.strictEqual(before.Snapshots?.length, 1)
      // Act
      const seen = yield* deleteTwice({ recoveryPointArn: `arn:aws:ec2:us-east-1::snapshot/${snapshotId}`, backupVaultName: "Default" })
      // Assess
      assert.deepStrictEqual(seen, ["deleted", "deleted"])
      const described = yield* undefinedWhenNotFound(
        awsCall("ec2:DescribeSnapshots", (abortSignal) => ec2.send(new DescribeSnapshotsCommand({ SnapshotIds: [snapshotId] }), { abortSignal }))
      )
      assert.deepStrictEqual(described?.Snapshots ?? [], [])
    }).pipe(Effect.provide(emulatorClients(emulator.endpoint)))
  )

  it.live("deletes an RDS DB snapshot, and says deleted again when asked a second time", () =>
    Effect.gen(function* () {
      // Prepare
      const rds = yield* Rds
      yield* awsCall("rds:CreateDBInstance", (abortSignal) =>
        rds.send(
          new CreateDBInstanceCommand({
            DBInstanceIdentifier: "orders",
            DBInstanceClass: "db.t4g.micro",
            Engine: "postgres",
            AllocatedStorage: 20,
            MasterUsername: "owner",
            MasterUserPassword: "not-a-secret-0"
          }),
          { abortSignal }
        )
      )
      const snapshot = yield* awsCall("rds:CreateDBSnapshot", (abortSignal) =>
        rds.send(new CreateDBSnapshotCommand({ DBInstanceIdentifier: "orders", DBSnapshotIdentifier: "orders-nightly" }), { abortSignal })
      )
      // Act
      const seen = yield* deleteTwice({ recoveryPointArn: snapshot.DBSnapshot?.DBSnapshotArn ?? "", backupVaultName: "Default" })
      // Assess
      assert.deepStrictEqual(seen, ["deleted", "deleted"])
      const described = yield* undefinedWhenNotFound(
        awsCall("rds:DescribeDBSnapshots", (abortSignal) => rds.send(new DescribeDBSnapshotsCommand({ DBSnapshotIdentifier: "orders-nightly" }), { abortSignal }))
      )
      assert.deepStrictEqual(described?.DBSnapshots ?? [], [])
    }).pipe(Effect.provide(emulatorClients(emulator.endpoint)))
  )

  it.live("deletes a DynamoDB backup, and says deleted again when asked a second time", () =>
    Effect.gen(function* () {
      // Prepare
      const dynamodb = yield* DynamoDb
      yield* awsCall("dynamodb:CreateTable", (abortSignal) =>
        dynamodb.send(
          new CreateTableCommand({
            TableName: "orders",
            AttributeDefinitions: [{ AttributeName: "id", AttributeType: "S" }],
            KeySchema: [{ AttributeName: "id", KeyType: "HASH" }],
            BillingMode: "PAY_PER_REQUEST"
          }),
          { abortSignal }
        )
      )
      const backup = yield* awsCall("dynamodb:CreateBackup", (abortSignal) =>
        dynamodb.send(new CreateBackupCommand({ TableName: "orders", BackupName: "orders-nightly" }), { abortSignal })
      )
      const backupArn = backup.BackupDetails?.BackupArn ?? ""
      const before = yield* awsCall("dynamodb:DescribeBackup", (abortSignal) => dynamodb.send(new DescribeBackupCommand({ BackupArn: backupArn }), { abortSignal }))
      assert.strictEqual(before.BackupDescription?.BackupDetails?.BackupStatus, "AVAILABLE")
      // Act
      const seen = yield* deleteTwice({ recoveryPointArn: backupArn, backupVaultName: "Default" })
      // Assess
      assert.deepStrictEqual(seen, ["deleted", "deleted"])
      const described = yield* undefinedWhenNotFound(
        awsCall("dynamodb:DescribeBackup", (abortSignal) => dynamodb.send(new DescribeBackupCommand({ BackupArn: backupArn }), { abortSignal }))
      )
      assert.isUndefined(described)
    }).pipe(Effect.provide(emulatorClients(emulator.endpoint)))
  )

  it.live("deregisters an AMI and deletes its snapshot, and says deleted again when asked a second time", () =>
    Effect.gen(function* () {
      // Prepare: an AMI made with CreateImage from an instance, as AWS Backup makes one
      const ec2 = yield* Ec2
      const base = yield* awsCall("ec2:DescribeImages", (abortSignal) => ec2.send(new DescribeImagesCommand({ Owners: ["amazon"] }), { abortSignal }))
      const instances = yield* awsCall("ec2:RunInstances", (abortSignal) =>
        ec2.send(new RunInstancesCommand({ ImageId: base.Images?.[0]?.ImageId, MinCount: 1, MaxCount: 1, InstanceType: "t3.micro" }), { abortSignal })
      )
      const created = yield* awsCall("ec2:CreateImage", (abortSignal) =>
        ec2.send(new CreateImageCommand({ InstanceId: instances.Instances?.[0]?.InstanceId ?? "", Name: "nightly" }), { abortSignal })
      )
      const imageId = created.ImageId ?? ""
      const image = yield* awsCall("ec2:DescribeImages", (abortSignal) => ec2.send(new DescribeImagesCommand({ ImageIds: [imageId] }), { abortSignal }))
      const snapshotId = image.Images?.[0]?.BlockDeviceMappings?.[0]?.Ebs?.SnapshotId ?? ""
      assert.match(snapshotId, /^snap-/)
      // Act
      const seen = yield* deleteTwice({ recoveryPointArn: `arn:aws:ec2:us-east-1::image/${imageId}`, backupVaultName: "Default" })
      // Assess
      assert.deepStrictEqual(seen, ["deleted", "deleted"])
      const images = yield* awsCall("ec2:DescribeImages", (abortSignal) => ec2.send(new DescribeImagesCommand({ Owners: ["self"] }), { abortSignal }))
      assert.notInclude((images.Images ?? []).map((candidate) => candidate.ImageId), imageId)
      const snapshots = yield* undefinedWhenNotFound(
        awsCall("ec2:DescribeSnapshots", (abortSignal) => ec2.send(new DescribeSnapshotsCommand({ SnapshotIds: [snapshotId] }), { abortSignal }))
      )
      assert.deepStrictEqual(snapshots?.Snapshots ?? [], [])
    }).pipe(Effect.provide(emulatorClients(emulator.endpoint)))
  )
})
