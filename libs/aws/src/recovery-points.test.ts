import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import {
  BackupClient,
  DeleteRecoveryPointCommand,
  DescribeRecoveryPointCommand,
  InvalidRequestException,
  ResourceNotFoundException,
  type RecoveryPointStatus
} from "@aws-sdk/client-backup"
import { CreateBackupCommand, CreateTableCommand, DeleteBackupCommand, DescribeBackupCommand, DynamoDBClient } from "@aws-sdk/client-dynamodb"
import { CreateSnapshotCommand, CreateVolumeCommand, DescribeSnapshotsCommand, EC2Client } from "@aws-sdk/client-ec2"
import { CreateDBInstanceCommand, CreateDBSnapshotCommand, DeleteDBSnapshotCommand, DescribeDBSnapshotsCommand, RDSClient } from "@aws-sdk/client-rds"
import { mockClient } from "aws-sdk-client-mock"
import { Effect, Layer } from "effect"
import { type Emulator, emulatorClients, startEmulator } from "@backup-actions/local"
import { awsCall } from "./call"
import { Backup } from "./clients/backup"
import { DynamoDb } from "./clients/dynamodb"
import { Ec2 } from "./clients/ec2"
import { Rds } from "./clients/rds"
import { undefinedWhenNotFound } from "./not-found"
import { RecoveryPoints, type RecoveryPointRef } from "./recovery-points"

const snapshotPoint: RecoveryPointRef = {
  recoveryPointArn: "arn:aws:ec2:us-east-1::snapshot/snap-0123456789abcdef0",
  backupVaultName: "archive-direct",
  snapshotId: "snap-0123456789abcdef0"
}
const target = { BackupVaultName: "archive-direct", RecoveryPointArn: snapshotPoint.recoveryPointArn }

const notFound = () => new ResourceNotFoundException({ message: `${snapshotPoint.recoveryPointArn} not found`, $metadata: { httpStatusCode: 400 } })

/** AWS Backup against a mocked client: the emulator has no recovery points. */
const throughBackup = () => {
  const client = new BackupClient({ region: "us-east-1" })
  const mock = mockClient(client)
  const deletion = Effect.flatMap(RecoveryPoints, (points) => points.delete(snapshotPoint)).pipe(
    Effect.provide(RecoveryPoints.viaBackup.pipe(Layer.provide(Layer.succeed(Backup, client))))
  )
  return { mock, deletion }
}

describe("deleting a recovery point through AWS Backup", () => {
  it.effect("sends DeleteRecoveryPoint with the vault and the recovery-point ARN, and is deleted when a describe no longer finds it", () =>
    Effect.gen(function* () {
      // Prepare
      const { mock, deletion } = throughBackup()
      mock.on(DeleteRecoveryPointCommand).resolves({})
      mock.on(DescribeRecoveryPointCommand).rejects(notFound())
      // Act
      const seen = yield* deletion
      // Assess
      assert.strictEqual(seen, "deleted")
      assert.deepStrictEqual(
        mock.commandCalls(DeleteRecoveryPointCommand).map((call) => call.args[0].input),
        [target]
      )
      assert.deepStrictEqual(
        mock.commandCalls(DescribeRecoveryPointCommand).map((call) => call.args[0].input),
        [target]
      )
    })
  )

  const lostReplies = [
    { name: "a 500", error: () => Object.assign(new Error("We encountered an internal error. Please try again."), { name: "InternalFailure", $metadata: { httpStatusCode: 500 } }) },
    { name: "a request timeout", error: () => Object.assign(new Error("Connection timed out after 30000 ms"), { name: "TimeoutError" }) }
  ]
  for (const lost of lostReplies) {
    it.live(`takes a lost reply (${lost.name} after AWS deleted it, then not found on the retry) for a deletion, when a describe finds nothing`, () =>
      Effect.gen(function* () {
        // Prepare
        const { mock, deletion } = throughBackup()
        mock.on(DeleteRecoveryPointCommand).rejectsOnce(lost.error()).rejectsOnce(notFound())
        mock.on(DescribeRecoveryPointCommand).rejects(notFound())
        // Act
        const seen = yield* deletion
        // Assess
        assert.strictEqual(seen, "deleted")
        assert.deepStrictEqual(
          mock.commandCalls(DeleteRecoveryPointCommand).map((call) => call.args[0].input),
          [target, target]
        )
        assert.deepStrictEqual(
          mock.commandCalls(DescribeRecoveryPointCommand).map((call) => call.args[0].input),
          [target]
        )
      })
    )
  }

  const statuses: ReadonlyArray<{ readonly status: RecoveryPointStatus; readonly seen: string }> = [
    { status: "DELETING", seen: "deleting" },
    { status: "EXPIRED", seen: "expired" },
    { status: "COMPLETED", seen: "still-there" },
    { status: "PARTIAL", seen: "still-there" }
  ]
  for (const { status, seen } of statuses) {
    it.effect(`says "${seen}" when the delete is accepted and a describe finds the recovery point ${status}`, () =>
      Effect.gen(function* () {
        // Prepare
        const { mock, deletion } = throughBackup()
        mock.on(DeleteRecoveryPointCommand).resolves({})
        mock.on(DescribeRecoveryPointCommand).resolves({ RecoveryPointArn: target.RecoveryPointArn, BackupVaultName: target.BackupVaultName, Status: status })
        // Act
        const result = yield* deletion
        // Assess
        assert.strictEqual(result, seen)
        assert.deepStrictEqual(
          mock.commandCalls(DescribeRecoveryPointCommand).map((call) => call.args[0].input),
          [target]
        )
      })
    )
  }

  it.effect("takes an invalid-request answer for a deletion under way when a describe finds the recovery point DELETING", () =>
    Effect.gen(function* () {
      // Prepare
      const { mock, deletion } = throughBackup()
      mock.on(DeleteRecoveryPointCommand).rejects(new InvalidRequestException({ message: "Recovery point is being deleted", $metadata: { httpStatusCode: 400 } }))
      mock.on(DescribeRecoveryPointCommand).resolves({ Status: "DELETING" })
      // Act
      const seen = yield* deletion
      // Assess
      assert.strictEqual(seen, "deleting")
    })
  )

  it.effect("keeps an invalid-request answer as the error when a describe finds the recovery point as it was", () =>
    Effect.gen(function* () {
      // Prepare
      const { mock, deletion } = throughBackup()
      mock.on(DeleteRecoveryPointCommand).rejects(new InvalidRequestException({ message: "the recovery point is retained by a legal hold", $metadata: { httpStatusCode: 400 } }))
      mock.on(DescribeRecoveryPointCommand).resolves({ Status: "COMPLETED" })
      // Act
      const error = yield* Effect.flip(deletion)
      // Assess
      assert.strictEqual(error.code, "InvalidRequestException")
      assert.include(error.message, "legal hold")
    })
  )

  it.effect("fails with the describe's error rather than guess when the describe is refused", () =>
    Effect.gen(function* () {
      // Prepare
      const { mock, deletion } = throughBackup()
      mock.on(DeleteRecoveryPointCommand).resolves({})
      mock
        .on(DescribeRecoveryPointCommand)
        .rejects(Object.assign(new Error("not authorized to perform backup:DescribeRecoveryPoint"), { name: "AccessDeniedException", $metadata: { httpStatusCode: 403 } }))
      // Act
      const error = yield* Effect.flip(deletion)
      // Assess
      assert.strictEqual(error.operation, "backup:DescribeRecoveryPoint")
      assert.strictEqual(error.code, "AccessDeniedException")
    })
  )
})

describe("deleting a recovery point with mocked resources, where AWS Backup has none", () => {
  const layerWith = (clients: { readonly rds: RDSClient; readonly dynamodb: DynamoDBClient; readonly ec2: EC2Client }) =>
    RecoveryPoints.viaResources.pipe(
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
    Effect.flatMap(RecoveryPoints, (points) => Effect.all([points.delete(ref), points.delete(ref)])).pipe(Effect.provide(RecoveryPoints.viaResources))

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
})
