import type { EC2Client, Snapshot } from "@aws-sdk/client-ec2"
import type { RDSClient } from "@aws-sdk/client-rds"
import { Effect } from "effect"
import {
  sharerClusterSnapshotReplicas,
  sharerDbSnapshotReplicas,
  sharerSnapshotReplicas,
  tagValueIn,
  type AwsError,
  type RegionClients,
  type TagList
} from "@backup-actions/aws"
import { CREATED_AT_TAG, MANAGED_BY_TAG, SHARER, SOURCE_ARN_TAG, SOURCE_CREATED_AT_TAG, SOURCE_RESOURCE_TAG } from "@backup-actions/contracts"
import { OperationFailed } from "../errors"
import type { FailoverSource } from "./request"

/**
 * The tags the sharer puts on its replicas (apps/sharer/src/tags.ts). The CLI reads them in the
 * DR account to find the replicas of a source; it never parses a replica's name.
 */
export const REPLICA_TAGS = {
  managedBy: MANAGED_BY_TAG,
  sharer: SHARER,
  sourceArn: SOURCE_ARN_TAG,
  sourceResource: SOURCE_RESOURCE_TAG,
  createdAt: CREATED_AT_TAG,
  sourceCreatedAt: SOURCE_CREATED_AT_TAG
} as const

/** A replica found in the DR region, with the times that order replicas and give the RPO. */
export interface FoundReplica {
  readonly id: string
  readonly arn: string
  /** When its source was taken, when known; else undefined. */
  readonly sourceTakenAt: number | undefined
  readonly createdAt: number | undefined
  /** RDS and Aurora: the engine, which a cluster restore has to name. */
  readonly engine: string | undefined
}

const timeOf = (text: string | undefined): number | undefined => {
  const millis = Date.parse(text ?? "")
  return Number.isFinite(millis) ? millis : undefined
}

/** Newest first: by the time the source was taken, then by when the replica was made. */
const newestFirst = (left: FoundReplica, right: FoundReplica): number =>
  (right.sourceTakenAt ?? right.createdAt ?? 0) - (left.sourceTakenAt ?? left.createdAt ?? 0) || (right.createdAt ?? 0) - (left.createdAt ?? 0)

/** What a DB snapshot and a DB cluster snapshot replica have in common, for choosing among them. */
interface RdsSnapshotReplica {
  readonly id: string | undefined
  readonly arn: string | undefined
  readonly status: string | undefined
  readonly engine: string | undefined
  readonly tags: TagList
  /** A DB snapshot copy keeps its source's creation time; a cluster snapshot copy does not. */
  readonly originalCreateTime: Date | undefined
}

/** The available ones of the sharer's RDS replicas, newest first. */
const usableRdsReplicas = (snapshots: ReadonlyArray<RdsSnapshotReplica>): ReadonlyArray<FoundReplica> =>
  snapshots
    .flatMap((snapshot) =>
      snapshot.status !== "available" || snapshot.id === undefined
        ? []
        : [
            {
              id: snapshot.id,
              arn: snapshot.arn ?? snapshot.id,
              sourceTakenAt: timeOf(tagValueIn(snapshot.tags, REPLICA_TAGS.sourceCreatedAt)) ?? snapshot.originalCreateTime?.getTime(),
              createdAt: timeOf(tagValueIn(snapshot.tags, REPLICA_TAGS.createdAt)),
              engine: snapshot.engine
            }
          ]
    )
    .sort(newestFirst)

/** The sharer's DB snapshot replicas, or for Aurora its DB cluster snapshot replicas, available ones newest first. */
const rdsReplicas = (rds: RDSClient, source: FailoverSource) => {
  const selector = { tag: source.matchTag, value: source.arn }
  const listed: Effect.Effect<ReadonlyArray<RdsSnapshotReplica>, AwsError> =
    source.kind === "Aurora"
      ? Effect.map(sharerClusterSnapshotReplicas(rds, { ...selector, clusterId: source.resourceId }), (snapshots) =>
          snapshots.map((snapshot) => ({ id: snapshot.DBClusterSnapshotIdentifier, arn: snapshot.DBClusterSnapshotArn, status: snapshot.Status, engine: snapshot.Engine, tags: snapshot.TagList, originalCreateTime: undefined }))
        )
      : Effect.map(sharerDbSnapshotReplicas(rds, { ...selector, instanceId: source.resourceId }), (snapshots) =>
          snapshots.map((snapshot) => ({ id: snapshot.DBSnapshotIdentifier, arn: snapshot.DBSnapshotArn, status: snapshot.Status, engine: snapshot.Engine, tags: snapshot.TagList, originalCreateTime: snapshot.OriginalSnapshotCreateTime }))
        )
  return Effect.map(listed, usableRdsReplicas)
}

const ebsReplicaOf = (snapshot: Snapshot, id: string, region: string): FoundReplica => ({
  id,
  arn: `arn:aws:ec2:${region}::snapshot/${id}`,
  sourceTakenAt: timeOf(tagValueIn(snapshot.Tags, REPLICA_TAGS.sourceCreatedAt)),
  createdAt: timeOf(tagValueIn(snapshot.Tags, REPLICA_TAGS.createdAt)) ?? snapshot.StartTime?.getTime(),
  engine: undefined
})

/** The sharer's completed EBS snapshot replicas, newest first. */
const ebsReplicas = (ec2: EC2Client, source: FailoverSource, region: string) =>
  sharerSnapshotReplicas(ec2, { tag: source.matchTag, value: source.arn, completedOnly: true }).pipe(
    Effect.map((snapshots) =>
      snapshots.flatMap((snapshot) => (snapshot.SnapshotId === undefined ? [] : [ebsReplicaOf(snapshot, snapshot.SnapshotId, region)])).sort(newestFirst)
    )
  )

/** Where each kind of source's replicas are looked for, as the refusal names it. */
const REPLICA_NOUNS: Record<FailoverSource["kind"], string> = {
  RDS: "available DB snapshot",
  Aurora: "available DB cluster snapshot",
  EBS: "completed snapshot"
}

/**
 * The newest replica of the source in the clients' account and region; none is a failure that
 * says where it looked (`where`) and which tags it asked for.
 */
export const newestReplica = (clients: RegionClients, source: FailoverSource, where: string) =>
  Effect.gen(function* () {
    const replicas = source.kind === "EBS" ? yield* ebsReplicas(clients.ec2, source, clients.region) : yield* rdsReplicas(clients.rds, source)
    const newest = replicas[0]
    if (newest === undefined) {
      return yield* new OperationFailed({
        message: `no replica of ${source.arn} in ${where}: no ${REPLICA_NOUNS[source.kind]} tagged ${REPLICA_TAGS.managedBy}=${REPLICA_TAGS.sharer} and ${source.matchTag}=${source.arn}`
      })
    }
    return newest
  })
