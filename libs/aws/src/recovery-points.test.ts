import { assert, describe, it } from "@effect/vitest"
import { BackupClient, DeleteRecoveryPointCommand } from "@aws-sdk/client-backup"
import { mockClient } from "aws-sdk-client-mock"
import { Effect, Layer } from "effect"
import { DeleteBackupCommand, DynamoDBClient } from "@aws-sdk/client-dynamodb"
import { EC2Client } from "@aws-sdk/client-ec2"
import { DeleteDBSnapshotCommand, RDSClient } from "@aws-sdk/client-rds"
import { Backup } from "./clients/backup"
import { DynamoDb } from "./clients/dynamodb"
import { Ec2 } from "./clients/ec2"
import { Rds } from "./clients/rds"
import { RecoveryPoints } from "./recovery-points"

// The emulator has no AWS Backup recovery points: the exact request is checked against a mocked client.
describe("deleting a recovery point through AWS Backup", () => {
  it.effect("sends DeleteRecoveryPoint with the vault and the recovery-point ARN", () =>
    Effect.gen(function* () {
      const client = new BackupClient({ region: "us-east-1" })
      const mock = mockClient(client)
      mock.on(DeleteRecoveryPointCommand).resolves({})
      yield* Effect.flatMap(RecoveryPoints, (points) =>
        points.delete({ recoveryPointArn: "arn:aws:ec2:us-east-1::snapshot/snap-0123456789abcdef0", backupVaultName: "archive-direct", snapshotId: "snap-0123456789abcdef0" })
      ).pipe(Effect.provide(RecoveryPoints.viaBackup.pipe(Layer.provide(Layer.succeed(Backup, client)))))
      assert.deepStrictEqual(
        mock.commandCalls(DeleteRecoveryPointCommand).map((call) => call.args[0].input),
        [{ BackupVaultName: "archive-direct", RecoveryPointArn: "arn:aws:ec2:us-east-1::snapshot/snap-0123456789abcdef0" }]
      )
    })
  )
})

describe("deleting a recovery point on the emulator, where AWS Backup has none", () => {
  const layerWith = (clients: { readonly rds: RDSClient; readonly dynamodb: DynamoDBClient; readonly ec2: EC2Client }) =>
    RecoveryPoints.viaResources.pipe(
      Layer.provide(Layer.mergeAll(Layer.succeed(Rds, clients.rds), Layer.succeed(DynamoDb, clients.dynamodb), Layer.succeed(Ec2, clients.ec2)))
    )
  const clients = () => ({ rds: new RDSClient({ region: "us-east-1" }), dynamodb: new DynamoDBClient({ region: "us-east-1" }), ec2: new EC2Client({ region: "us-east-1" }) })

  it.effect("deletes the DB snapshot behind an RDS recovery point and the backup behind a DynamoDB one", () =>
    Effect.gen(function* () {
      // Prepare
      const { rds, dynamodb, ec2 } = clients()
      const rdsMock = mockClient(rds).on(DeleteDBSnapshotCommand).resolves({})
      const dynamodbMock = mockClient(dynamodb).on(DeleteBackupCommand).resolves({})
      const backupArn = "arn:aws:dynamodb:us-east-1:123456789012:table/orders/backup/01795314018286-5dbb244c"
      // Act
      yield* Effect.flatMap(RecoveryPoints, (points) =>
        Effect.all([
          points.delete({ recoveryPointArn: "arn:aws:rds:us-east-1:123456789012:snapshot:orders-nightly", backupVaultName: "Default" }),
          points.delete({ recoveryPointArn: backupArn, backupVaultName: "Default" })
        ])
      ).pipe(Effect.provide(layerWith({ rds, dynamodb, ec2 })))
      // Assess
      assert.deepStrictEqual(rdsMock.commandCalls(DeleteDBSnapshotCommand).map((call) => call.args[0].input), [{ DBSnapshotIdentifier: "orders-nightly" }])
      assert.deepStrictEqual(dynamodbMock.commandCalls(DeleteBackupCommand).map((call) => call.args[0].input), [{ BackupArn: backupArn }])
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
