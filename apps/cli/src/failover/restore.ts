import { DescribeDBInstancesCommand, type RDSClient } from "@aws-sdk/client-rds"
import { Effect } from "effect"
import { awsCall, type AwsError } from "@backup-actions/aws"
import { OperationFailed } from "../errors"
import { REPLICA_TAGS, type FoundReplica } from "./replicas"
import { longestNewId, type FailoverRequest, type FailoverSource } from "./request"
import { NotReadyYet, waitUntilReady } from "./wait"
import { RESTORED_FROM_TAG } from "../restored-names"

/** Tags on what a failover makes: where it came from. Not the project's managed tag, so no sweeper ever deletes it. */
export const failoverTags = (source: FailoverSource, replica: FoundReplica, nowMs: number) => [
  { Key: "backup-actions:failover-of", Value: source.arn },
  { Key: RESTORED_FROM_TAG, Value: replica.arn },
  { Key: REPLICA_TAGS.createdAt, Value: new Date(nowMs).toISOString() },
  { Key: "Name", Value: `failover of ${source.arn}` }
]

/**
 * A DB instance (or cluster) identifier from the source's name and the time: letters, digits,
 * single hyphens, at most 63; a cluster's leaves room for its writer's `-writer`.
 */
export const defaultInstanceId = (source: FailoverSource, nowMs: number): string => {
  const name = source.arn.split(/[:/]/).pop() ?? "db"
  const stamp = new Date(nowMs).toISOString().replace(/[-:T]/g, "").slice(0, 12)
  const base = `failover-${name}`.replace(/[^A-Za-z0-9]+/g, "-").slice(0, longestNewId(source.kind) - stamp.length - 1).replace(/-+$/, "")
  return `${base}-${stamp}`
}

/** The RDS network options, as both restores and CreateDBInstance name them. */
export const networkOf = (request: FailoverRequest) => ({
  ...(request.dbSubnetGroup === undefined ? {} : { DBSubnetGroupName: request.dbSubnetGroup }),
  ...(request.securityGroupIds.length === 0 ? {} : { VpcSecurityGroupIds: [...request.securityGroupIds] })
})

const FAILED_RDS_STATES = new Set([
  "failed",
  "incompatible-restore",
  "incompatible-parameters",
  "incompatible-network",
  "storage-full",
  "inaccessible-encryption-credentials",
  "inaccessible-encryption-credentials-recoverable",
  "deleting"
])

/** Waits until a DB instance or cluster is available; `doing` says, in the refusal, what it was in the middle of. */
export const rdsAvailable = <A>(what: string, doing: string, describe: Effect.Effect<{ readonly status: string | undefined; readonly found: A | undefined }, AwsError>) =>
  waitUntilReady(
    what,
    Effect.gen(function* () {
      const answer = yield* describe
      const status = answer.status ?? "unknown"
      if (status === "available" && answer.found !== undefined) return answer.found
      if (FAILED_RDS_STATES.has(status)) return yield* new OperationFailed({ message: `${what} ended ${status} while it was ${doing}` })
      return yield* new NotReadyYet({ status })
    })
  )

/** Waits until a DB instance (a restored one, or a cluster's writer) is available. */
export const dbInstanceAvailable = (rds: RDSClient, instanceId: string, doing: string) =>
  rdsAvailable(
    `DB instance ${instanceId}`,
    doing,
    awsCall("rds:DescribeDBInstances", (abortSignal) => rds.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: instanceId }), { abortSignal })).pipe(
      Effect.map((answer) => ({ status: answer.DBInstances?.[0]?.DBInstanceStatus, found: answer.DBInstances?.[0] }))
    )
  )
