import {
  CopyDBClusterSnapshotCommand,
  DeleteDBClusterSnapshotCommand,
  DescribeDBClusterSnapshotsCommand,
  ModifyDBClusterSnapshotAttributeCommand,
  type DBClusterSnapshot
} from "@aws-sdk/client-rds"
import { Effect } from "effect"
import { awsCall, sharerClusterSnapshotReplicas, undefinedWhenNotFound } from "@backup-actions/aws"
import type { ReplicaJob } from "./job"
import { parseRdsSnapshotArn, replicateRdsSnapshot, type RdsSnapshot, type RdsSnapshotKind } from "./rds"

const fromClusterSnapshot = (snapshot: DBClusterSnapshot): RdsSnapshot => ({
  identifier: snapshot.DBClusterSnapshotIdentifier,
  status: snapshot.Status,
  percentProgress: snapshot.PercentProgress,
  encrypted: snapshot.StorageEncrypted,
  kmsKeyId: snapshot.KmsKeyId,
  createdAt: snapshot.SnapshotCreateTime,
  // A cluster snapshot does not keep the original's time through a copy.
  takenAt: snapshot.SnapshotCreateTime,
  sourceId: snapshot.DBClusterIdentifier,
  tags: snapshot.TagList
})

/**
 * Aurora DB cluster snapshots (resource type Aurora): the same replica path as DB snapshots,
 * through the cluster snapshot calls. CopyDBClusterSnapshot takes the source as an ARN, so for
 * a source in another region the SDK's RDS middleware adds the pre-signed URL, as for
 * CopyDBSnapshot; the source's tags are never copied, the sharer's are set instead.
 */
export const CLUSTER_SNAPSHOTS: RdsSnapshotKind = {
  noun: "DB cluster snapshot",
  sourceNoun: "cluster",
  arnType: "cluster-snapshot",
  sourceArnType: "cluster",
  describe: (rds, identifier) =>
    undefinedWhenNotFound(
      awsCall("rds:DescribeDBClusterSnapshots", (abortSignal) =>
        rds.send(new DescribeDBClusterSnapshotsCommand({ DBClusterSnapshotIdentifier: identifier }), { abortSignal })
      ).pipe(
        Effect.map((result) => {
          const snapshot = result.DBClusterSnapshots?.[0]
          return snapshot === undefined ? undefined : fromClusterSnapshot(snapshot)
        })
      )
    ),
  copy: (rds, request) =>
    awsCall("rds:CopyDBClusterSnapshot", (abortSignal) =>
      rds.send(
        new CopyDBClusterSnapshotCommand({
          SourceDBClusterSnapshotIdentifier: request.from,
          TargetDBClusterSnapshotIdentifier: request.to,
          KmsKeyId: request.kmsKeyId,
          CopyTags: false,
          Tags: request.tags
        }),
        { abortSignal }
      )
    ),
  delete: (rds, identifier) =>
    awsCall("rds:DeleteDBClusterSnapshot", (abortSignal) =>
      rds.send(new DeleteDBClusterSnapshotCommand({ DBClusterSnapshotIdentifier: identifier }), { abortSignal })
    ),
  modifyRestore: (rds, identifier, change, account) =>
    awsCall("rds:ModifyDBClusterSnapshotAttribute", (abortSignal) =>
      rds.send(
        new ModifyDBClusterSnapshotAttributeCommand({
          DBClusterSnapshotIdentifier: identifier,
          AttributeName: "restore",
          ...(change === "add" ? { ValuesToAdd: [account] } : { ValuesToRemove: [account] })
        }),
        { abortSignal }
      )
    ),
  sharerReplicas: (rds, selector, clusterId) =>
    Effect.map(sharerClusterSnapshotReplicas(rds, { ...selector, clusterId }), (snapshots) => snapshots.map(fromClusterSnapshot))
}

/** Whether the recovery point is a DB cluster snapshot (Aurora's, or a Multi-AZ DB cluster's) rather than a DB instance snapshot. */
export const isClusterSnapshotArn = (arn: string): boolean => parseRdsSnapshotArn(arn)?.arnType === "cluster-snapshot"

/** Copies an Aurora DB cluster snapshot to the rule's destination, exactly as a DB snapshot is copied. */
export const replicateClusterSnapshot = (job: ReplicaJob) => replicateRdsSnapshot(CLUSTER_SNAPSHOTS, job)
