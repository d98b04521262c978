import { CreateDBInstanceCommand, DescribeDBClustersCommand, RestoreDBClusterFromSnapshotCommand, type RDSClient } from "@aws-sdk/client-rds"
import { Effect } from "effect"
import { awsCall } from "@backup-actions/aws"
import type { RestoredResource } from "@backup-actions/contracts"
import { OperationFailed } from "../errors"
import type { FoundReplica } from "./replicas"
import { WRITER_SUFFIX, type FailoverRequest } from "./request"
import { dbInstanceAvailable, defaultInstanceId, failoverTags, networkOf, rdsAvailable } from "./restore"

/**
 * Aurora: a restored cluster has storage but no compute, so one writer DB instance is created in
 * it once the cluster is available; the cluster's writer endpoint is what applications connect to.
 */
export const restoreDbCluster = (rds: RDSClient, request: FailoverRequest, replica: FoundReplica, nowMs: number) =>
  Effect.gen(function* () {
    const clusterId = request.newInstanceId ?? defaultInstanceId(request.source, nowMs)
    const writerId = `${clusterId}${WRITER_SUFFIX}`
    const engine = replica.engine
    if (engine === undefined) return yield* new OperationFailed({ message: `the replica ${replica.arn} does not say its engine, which RestoreDBClusterFromSnapshot needs` })
    yield* awsCall("rds:RestoreDBClusterFromSnapshot", (abortSignal) =>
      rds.send(
        new RestoreDBClusterFromSnapshotCommand({
          DBClusterIdentifier: clusterId,
          SnapshotIdentifier: replica.id,
          Engine: engine,
          ...networkOf(request),
          Tags: failoverTags(request.source, replica, nowMs)
        }),
        { abortSignal }
      )
    )
    const cluster = yield* rdsAvailable(
      `DB cluster ${clusterId}`,
      `being restored from ${replica.arn}`,
      awsCall("rds:DescribeDBClusters", (abortSignal) => rds.send(new DescribeDBClustersCommand({ DBClusterIdentifier: clusterId }), { abortSignal })).pipe(
        Effect.map((answer) => ({ status: answer.DBClusters?.[0]?.Status, found: answer.DBClusters?.[0] }))
      )
    )
    yield* awsCall("rds:CreateDBInstance", (abortSignal) =>
      rds.send(
        new CreateDBInstanceCommand({
          DBInstanceIdentifier: writerId,
          DBClusterIdentifier: clusterId,
          DBInstanceClass: request.instanceClass,
          Engine: cluster.Engine ?? engine,
          Tags: failoverTags(request.source, replica, nowMs)
        }),
        { abortSignal }
      )
    ).pipe(
      Effect.catchTag("AwsError", (error) =>
        Effect.fail(
          new OperationFailed({
            message: `DB cluster ${clusterId} was restored from ${replica.arn} and left as it is, but its writer ${writerId} could not be created: ${error.code}: ${error.message}`
          })
        )
      )
    )
    const writer = yield* dbInstanceAvailable(rds, writerId, `being created in DB cluster ${clusterId}`)
    const endpoint = cluster.Endpoint === undefined ? undefined : `${cluster.Endpoint}:${cluster.Port ?? ""}`
    const restored: RestoredResource = {
      kind: "db-cluster",
      id: clusterId,
      instanceId: writerId,
      status: writer.DBInstanceStatus ?? "available",
      ...(endpoint === undefined ? {} : { endpoint })
    }
    return restored
  })
