import { DeleteRecoveryPointCommand } from "@aws-sdk/client-backup"
import { DeleteBackupCommand } from "@aws-sdk/client-dynamodb"
import { DeleteSnapshotCommand } from "@aws-sdk/client-ec2"
import { DeleteDBSnapshotCommand } from "@aws-sdk/client-rds"
import { Context, Effect, Layer } from "effect"
import { AwsConfig, isEmulated } from "./clients"
import { Backup } from "./clients/backup"
import { DynamoDb } from "./clients/dynamodb"
import { Ec2 } from "./clients/ec2"
import { Rds } from "./clients/rds"
import { awsCall } from "./call"
import { AwsError } from "./errors"

export interface RecoveryPointRef {
  readonly recoveryPointArn: string
  readonly backupVaultName: string
  /** The EBS snapshot behind the recovery point, when it is one. */
  readonly snapshotId?: string
}

export interface RecoveryPointsShape {
  /** Deletes a recovery point. Callers only do so after the artifact was verified. */
  readonly delete: (ref: RecoveryPointRef) => Effect.Effect<void, AwsError>
}

/**
 * AWS Backup owns its recovery points: against AWS they are deleted with Backup's
 * DeleteRecoveryPoint. The emulator has no Backup recovery points, so there the resource
 * behind one is deleted instead, which exercises the same decision path.
 */
export class RecoveryPoints extends Context.Tag("backup-actions/RecoveryPoints")<RecoveryPoints, RecoveryPointsShape>() {
  static readonly viaBackup = Layer.effect(
    RecoveryPoints,
    Effect.map(Backup, (backup) => ({
      delete: (ref) =>
        awsCall("backup:DeleteRecoveryPoint", (abortSignal) =>
          backup.send(new DeleteRecoveryPointCommand({ BackupVaultName: ref.backupVaultName, RecoveryPointArn: ref.recoveryPointArn }), { abortSignal })
        ).pipe(Effect.asVoid)
    }))
  )

  /**
   * On the emulator: the resource behind the recovery point (an EBS snapshot, an RDS DB
   * snapshot, a DynamoDB backup). A recovery point of another kind is refused, so that an
   * outcome never says a source was deleted when it was not.
   */
  static readonly viaResources = Layer.effect(
    RecoveryPoints,
    Effect.map(Effect.all([Ec2, Rds, DynamoDb]), ([ec2, rds, dynamodb]) => ({
      delete: (ref) => {
        const snapshotId = ref.snapshotId ?? /:snapshot\/(snap-[0-9a-f]+)$/.exec(ref.recoveryPointArn)?.[1]
        if (snapshotId !== undefined) {
          return awsCall("ec2:DeleteSnapshot", (abortSignal) => ec2.send(new DeleteSnapshotCommand({ SnapshotId: snapshotId }), { abortSignal })).pipe(Effect.asVoid)
        }
        const dbSnapshot = /^arn:[^:]+:rds:[^:]*:\d*:snapshot:(.+)$/.exec(ref.recoveryPointArn)?.[1]
        if (dbSnapshot !== undefined) {
          return awsCall("rds:DeleteDBSnapshot", (abortSignal) => rds.send(new DeleteDBSnapshotCommand({ DBSnapshotIdentifier: dbSnapshot }), { abortSignal })).pipe(
            Effect.asVoid
          )
        }
        if (/^arn:[^:]+:dynamodb:[^:]*:\d*:table\/[^/]+\/backup\/[^/]+$/.test(ref.recoveryPointArn)) {
          return awsCall("dynamodb:DeleteBackup", (abortSignal) => dynamodb.send(new DeleteBackupCommand({ BackupArn: ref.recoveryPointArn }), { abortSignal })).pipe(
            Effect.asVoid
          )
        }
        return Effect.fail(
          new AwsError({
            operation: "DeleteRecoveryPoint",
            code: "UnsupportedRecoveryPoint",
            message: `the emulator has no AWS Backup recovery points, and ${ref.recoveryPointArn} is not a resource this runtime can delete in its place`,
            kind: "client"
          })
        )
      }
    }))
  )

  /** Backup's API against AWS, the resource behind the recovery point against the emulator. */
  static readonly Live: Layer.Layer<RecoveryPoints, never, AwsConfig | Backup | Ec2 | Rds | DynamoDb> = Layer.unwrapEffect(
    Effect.map(AwsConfig, (settings): Layer.Layer<RecoveryPoints, never, Backup | Ec2 | Rds | DynamoDb> =>
      isEmulated(settings) ? RecoveryPoints.viaResources : RecoveryPoints.viaBackup
    )
  )
}
