import { DeleteRecoveryPointCommand } from "@aws-sdk/client-backup"
import { DeleteSnapshotCommand } from "@aws-sdk/client-ec2"
import { Context, Effect, Layer } from "effect"
import { AwsConfig, isEmulated } from "./clients"
import { Backup } from "./clients/backup"
import { Ec2 } from "./clients/ec2"
import { awsCall } from "./call"
import type { AwsError } from "./errors"

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
 * DeleteRecoveryPoint. The emulator has no Backup recovery points, so there the EBS
 * snapshot behind one is deleted instead, which exercises the same decision path.
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

  static readonly viaSnapshots = Layer.effect(
    RecoveryPoints,
    Effect.map(Ec2, (ec2) => ({
      delete: (ref) =>
        ref.snapshotId === undefined
          ? Effect.logWarning(`recovery point ${ref.recoveryPointArn} has no snapshot to delete`)
          : awsCall("ec2:DeleteSnapshot", (abortSignal) => ec2.send(new DeleteSnapshotCommand({ SnapshotId: ref.snapshotId }), { abortSignal })).pipe(
              Effect.asVoid
            )
    }))
  )

  /** Backup's API against AWS, the snapshot against the emulator. */
  static readonly Live: Layer.Layer<RecoveryPoints, never, AwsConfig | Backup | Ec2> = Layer.unwrapEffect(
    Effect.map(AwsConfig, (settings): Layer.Layer<RecoveryPoints, never, Backup | Ec2> =>
      isEmulated(settings) ? RecoveryPoints.viaSnapshots : RecoveryPoints.viaBackup
    )
  )
}
