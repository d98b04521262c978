import { DeleteRecoveryPointCommand, DescribeRecoveryPointCommand, type BackupClient } from "@aws-sdk/client-backup"
import { Context, Effect, Layer } from "effect"
import { Backup } from "./clients/backup"
import { awsCall } from "./call"
import type { AwsError } from "./errors"
import type { SourceDeletion } from "@backup-actions/contracts"
import { undefinedWhenNotFound } from "./not-found"

export interface RecoveryPointRef {
  readonly recoveryPointArn: string
  readonly backupVaultName: string
  /** The EBS snapshot behind the recovery point, when it is one. */
  readonly snapshotId?: string
}

export interface RecoveryPointsShape {
  /**
   * Deletes a recovery point and says what a describe saw afterwards. Idempotent: a recovery
   * point that is already gone (a retry after a lost reply, a replayed step) is "deleted".
   * Callers only do so after the artifact was verified.
   */
  readonly delete: (ref: RecoveryPointRef) => Effect.Effect<SourceDeletion, AwsError>
}

/**
 * AWS Backup answers a delete of a recovery point that it is already deleting, or that a lost
 * reply's first attempt already removed, with one of these: whether it is a refusal is only
 * known from a describe.
 */
const AMBIGUOUS_BACKUP_REFUSALS = new Set(["InvalidRequestException", "InvalidResourceStateException"])

/** AWS Backup's status of a recovery point, as a deletion; none (not found) is "deleted". */
export const backupDeletionOf = (status: string | undefined): SourceDeletion =>
  status === undefined ? "deleted" : status === "DELETING" ? "deleting" : status === "EXPIRED" ? "expired" : "still-there"

const deleteThroughBackup = (backup: BackupClient, ref: RecoveryPointRef): Effect.Effect<SourceDeletion, AwsError> =>
  Effect.gen(function* () {
    const target = { BackupVaultName: ref.backupVaultName, RecoveryPointArn: ref.recoveryPointArn }
    const refusal = yield* awsCall("backup:DeleteRecoveryPoint", (abortSignal) => backup.send(new DeleteRecoveryPointCommand(target), { abortSignal })).pipe(
      Effect.as(undefined),
      Effect.catchIf(
        (error) => error.kind === "not-found" || AMBIGUOUS_BACKUP_REFUSALS.has(error.code),
        (error) => Effect.succeed(error)
      )
    )
    const described = yield* undefinedWhenNotFound(
      awsCall("backup:DescribeRecoveryPoint", (abortSignal) => backup.send(new DescribeRecoveryPointCommand(target), { abortSignal }))
    )
    const seen = backupDeletionOf(described?.Status)
    // A refusal that left the recovery point as it was is a refusal: its reason is kept.
    if (seen === "still-there" && refusal !== undefined && refusal.kind !== "not-found") return yield* refusal
    return seen
  })

/**
 * AWS Backup owns its recovery points: they are deleted with Backup's DeleteRecoveryPoint, and a
 * describe after the delete says what became of it.
 */
export class RecoveryPoints extends Context.Tag("backup-actions/RecoveryPoints")<RecoveryPoints, RecoveryPointsShape>() {
  static readonly Live: Layer.Layer<RecoveryPoints, never, Backup> = Layer.effect(
    RecoveryPoints,
    Effect.map(Backup, (backup) => ({
      delete: (ref) => deleteThroughBackup(backup, ref)
    }))
  )
}
