import { DeleteRecoveryPointCommand, DescribeRecoveryPointCommand, type BackupClient } from "@aws-sdk/client-backup"
import { DeleteBackupCommand, DescribeBackupCommand, type DynamoDBClient } from "@aws-sdk/client-dynamodb"
import { DeleteSnapshotCommand, DescribeSnapshotsCommand, type EC2Client } from "@aws-sdk/client-ec2"
import { DeleteDBSnapshotCommand, DescribeDBSnapshotsCommand, type RDSClient } from "@aws-sdk/client-rds"
import { Context, Effect, Layer } from "effect"
import { AwsConfig, isEmulated } from "./clients"
import { Backup } from "./clients/backup"
import { DynamoDb } from "./clients/dynamodb"
import { Ec2 } from "./clients/ec2"
import { Rds } from "./clients/rds"
import { awsCall } from "./call"
import { AwsError } from "./errors"
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

/** A delete whose not-found answer means the work is already done. */
const ignoringNotFound = <A, R>(effect: Effect.Effect<A, AwsError, R>): Effect.Effect<void, AwsError, R> =>
  undefinedWhenNotFound(effect).pipe(Effect.asVoid)

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

const deleteEbsSnapshot = (ec2: EC2Client, snapshotId: string): Effect.Effect<SourceDeletion, AwsError> =>
  Effect.gen(function* () {
    yield* ignoringNotFound(awsCall("ec2:DeleteSnapshot", (abortSignal) => ec2.send(new DeleteSnapshotCommand({ SnapshotId: snapshotId }), { abortSignal })))
    const described = yield* undefinedWhenNotFound(
      awsCall("ec2:DescribeSnapshots", (abortSignal) => ec2.send(new DescribeSnapshotsCommand({ SnapshotIds: [snapshotId] }), { abortSignal }))
    )
    const present = described?.Snapshots?.some((snapshot) => snapshot.SnapshotId === snapshotId) ?? false
    return present ? "still-there" : "deleted"
  })

const deleteDbSnapshot = (rds: RDSClient, identifier: string): Effect.Effect<SourceDeletion, AwsError> =>
  Effect.gen(function* () {
    yield* ignoringNotFound(
      awsCall("rds:DeleteDBSnapshot", (abortSignal) => rds.send(new DeleteDBSnapshotCommand({ DBSnapshotIdentifier: identifier }), { abortSignal }))
    )
    const described = yield* undefinedWhenNotFound(
      awsCall("rds:DescribeDBSnapshots", (abortSignal) => rds.send(new DescribeDBSnapshotsCommand({ DBSnapshotIdentifier: identifier }), { abortSignal }))
    )
    const snapshot = described?.DBSnapshots?.find((candidate) => candidate.DBSnapshotIdentifier === identifier)
    return snapshot === undefined ? "deleted" : snapshot.Status === "deleting" ? "deleting" : "still-there"
  })

const deleteDynamoDbBackup = (dynamodb: DynamoDBClient, backupArn: string): Effect.Effect<SourceDeletion, AwsError> =>
  Effect.gen(function* () {
    yield* ignoringNotFound(awsCall("dynamodb:DeleteBackup", (abortSignal) => dynamodb.send(new DeleteBackupCommand({ BackupArn: backupArn }), { abortSignal })))
    const described = yield* undefinedWhenNotFound(
      awsCall("dynamodb:DescribeBackup", (abortSignal) => dynamodb.send(new DescribeBackupCommand({ BackupArn: backupArn }), { abortSignal }))
    )
    const status = described?.BackupDescription?.BackupDetails?.BackupStatus
    return status === undefined || status === "DELETED" ? "deleted" : "still-there"
  })

/**
 * AWS Backup owns its recovery points: against AWS they are deleted with Backup's
 * DeleteRecoveryPoint. The emulator has no Backup recovery points, so there the resource
 * behind one is deleted instead, which exercises the same decision path. Either way a
 * describe after the delete says what became of it.
 */
export class RecoveryPoints extends Context.Tag("backup-actions/RecoveryPoints")<RecoveryPoints, RecoveryPointsShape>() {
  static readonly viaBackup = Layer.effect(
    RecoveryPoints,
    Effect.map(Backup, (backup) => ({
      delete: (ref) => deleteThroughBackup(backup, ref)
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
      delete: (ref): Effect.Effect<SourceDeletion, AwsError> => {
        const snapshotId = ref.snapshotId ?? /:snapshot\/(snap-[0-9a-f]+)$/.exec(ref.recoveryPointArn)?.[1]
        if (snapshotId !== undefined) return deleteEbsSnapshot(ec2, snapshotId)
        const dbSnapshot = /^arn:[^:]+:rds:[^:]*:\d*:snapshot:(.+)$/.exec(ref.recoveryPointArn)?.[1]
        if (dbSnapshot !== undefined) return deleteDbSnapshot(rds, dbSnapshot)
        if (/^arn:[^:]+:dynamodb:[^:]*:\d*:table\/[^/]+\/backup\/[^/]+$/.test(ref.recoveryPointArn)) {
          return deleteDynamoDbBackup(dynamodb, ref.recoveryPointArn)
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
