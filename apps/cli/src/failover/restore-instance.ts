import { RestoreDBInstanceFromDBSnapshotCommand, type RDSClient } from "@aws-sdk/client-rds"
import { Effect } from "effect"
import { awsCall } from "@backup-actions/aws"
import type { RestoredResource } from "@backup-actions/contracts"
import type { FoundReplica } from "./replicas"
import type { FailoverRequest } from "./request"
import { dbInstanceAvailable, defaultInstanceId, failoverTags, networkOf } from "./restore"

/** RDS: a new DB instance from the DB snapshot replica, in the network asked for, waited for until available. */
export const restoreDbInstance = (rds: RDSClient, request: FailoverRequest, replica: FoundReplica, nowMs: number) =>
  Effect.gen(function* () {
    const instanceId = request.newInstanceId ?? defaultInstanceId(request.source, nowMs)
    yield* awsCall("rds:RestoreDBInstanceFromDBSnapshot", (abortSignal) =>
      rds.send(
        new RestoreDBInstanceFromDBSnapshotCommand({
          DBInstanceIdentifier: instanceId,
          DBSnapshotIdentifier: replica.id,
          DBInstanceClass: request.instanceClass,
          ...networkOf(request),
          Tags: failoverTags(request.source, replica, nowMs)
        }),
        { abortSignal }
      )
    )
    const instance = yield* dbInstanceAvailable(rds, instanceId, `being restored from ${replica.arn}`)
    const endpoint = instance.Endpoint?.Address === undefined ? undefined : `${instance.Endpoint.Address}:${instance.Endpoint.Port ?? ""}`
    const restored: RestoredResource = { kind: "db-instance", id: instanceId, status: instance.DBInstanceStatus ?? "available", ...(endpoint === undefined ? {} : { endpoint }) }
    return restored
  })
