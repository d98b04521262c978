import { assert, describe, it } from "@effect/vitest"
import { BackupClient, DeleteRecoveryPointCommand } from "@aws-sdk/client-backup"
import { mockClient } from "aws-sdk-client-mock"
import { Effect, Layer } from "effect"
import { Backup } from "./clients/backup"
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
