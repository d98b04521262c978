import { DeleteBackupCommand, DescribeBackupCommand, type DynamoDBClient } from "@aws-sdk/client-dynamodb"
import { DeleteSnapshotCommand, DescribeSnapshotsCommand, type EC2Client } from "@aws-sdk/client-ec2"
import {
  DeleteDBClusterSnapshotCommand,
  DeleteDBSnapshotCommand,
  DescribeDBClusterSnapshotsCommand,
  DescribeDBSnapshotsCommand,
  type RDSClient
} from "@aws-sdk/client-rds"
import { Effect, Layer } from "effect"
import { AwsError, DynamoDb, Ec2, Rds, RecoveryPoints, awsCall, deleteImage, undefinedWhenNotFound } from "@backup-actions/aws"
import type { SourceDeletion } from "@backup-actions/contracts"

/** A delete whose not-found answer means the work is already done. */
const ignoringNotFound = <A, R>(effect: Effect.Effect<A, AwsError, R>): Effect.Effect<void, AwsError, R> =>
  undefinedWhenNotFound(effect).pipe(Effect.asVoid)

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

const deleteDbClusterSnapshot = (rds: RDSClient, identifier: string): Effect.Effect<SourceDeletion, AwsError> =>
  Effect.gen(function* () {
    yield* ignoringNotFound(
      awsCall("rds:DeleteDBClusterSnapshot", (abortSignal) =>
        rds.send(new DeleteDBClusterSnapshotCommand({ DBClusterSnapshotIdentifier: identifier }), { abortSignal })
      )
    )
    const described = yield* undefinedWhenNotFound(
      awsCall("rds:DescribeDBClusterSnapshots", (abortSignal) =>
        rds.send(new DescribeDBClusterSnapshotsCommand({ DBClusterSnapshotIdentifier: identifier }), { abortSignal })
      )
    )
    const snapshot = described?.DBClusterSnapshots?.find((candidate) => candidate.DBClusterSnapshotIdentifier === identifier)
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
 * RecoveryPoints on the emulator, which has no AWS Backup recovery points: the resource behind
 * one is deleted in its place (an EBS snapshot, an RDS DB or cluster snapshot, a DynamoDB backup,
 * an AMI with its snapshots), which exercises the same decision path as Backup's
 * DeleteRecoveryPoint, and a describe afterwards says what became of it. A recovery point of
 * another kind is refused, so that an outcome never says a source was deleted when it was not.
 */
export const LocalRecoveryPoints: Layer.Layer<RecoveryPoints, never, Ec2 | Rds | DynamoDb> = Layer.effect(
  RecoveryPoints,
  Effect.map(Effect.all([Ec2, Rds, DynamoDb]), ([ec2, rds, dynamodb]) => ({
    delete: (ref): Effect.Effect<SourceDeletion, AwsError> => {
      const snapshotId = ref.snapshotId ?? /:snapshot\/(snap-[0-9a-f]+)$/.exec(ref.recoveryPointArn)?.[1]
      if (snapshotId !== undefined) return deleteEbsSnapshot(ec2, snapshotId)
      const imageId = /^arn:[^:]+:ec2:[^:]*:\d*:image\/(ami-[0-9a-f]+)$/.exec(ref.recoveryPointArn)?.[1]
      if (imageId !== undefined) return deleteImage(imageId).pipe(Effect.provideService(Ec2, ec2))
      const rdsSnapshot = /^arn:[^:]+:rds:[^:]*:\d*:(snapshot|cluster-snapshot):(.+)$/.exec(ref.recoveryPointArn)
      if (rdsSnapshot?.[2] !== undefined) {
        return rdsSnapshot[1] === "cluster-snapshot" ? deleteDbClusterSnapshot(rds, rdsSnapshot[2]) : deleteDbSnapshot(rds, rdsSnapshot[2])
      }
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
