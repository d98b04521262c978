import { Clock, Effect, Layer } from "effect"
import { AccountAccess, AwsConfig, Sts, type AccountTarget } from "@backup-actions/aws"
import { describeWhere, printFailover } from "./output"
import { newestReplica } from "./replicas"
import type { FailoverRequest } from "./request"
import { restoreDbCluster } from "./restore-cluster"
import { restoreDbInstance } from "./restore-instance"
import { createVolume } from "./restore-volume"
import { failoverResult } from "./result"

/** How a failover reaches the DR account: its sessions there are named for it in CloudTrail. */
export const FailoverAccess = AccountAccess.layer("backup-actions-failover").pipe(Layer.provide(Sts.Live))

/**
 * `failover`: the newest replica of the source in the DR account and region, restored there
 * (a DB instance, an Aurora cluster with its writer, or an EBS volume), waited for, and
 * reported with the RPO it achieves.
 */
export const failoverCommand = (request: FailoverRequest) =>
  Effect.scoped(
    Effect.gen(function* () {
      const settings = yield* AwsConfig
      const access = yield* AccountAccess
      const region = request.region ?? settings.region
      const target: AccountTarget = { region, roleArn: request.roleArn, externalId: request.externalId }
      // A role that cannot be assumed fails here, with its own error, rather than on the first EC2 or RDS call.
      yield* access.check(target)
      const clients = yield* access.clients(target)
      const where = describeWhere(region, request.roleArn)
      const newest = yield* newestReplica(clients, request.source, where)
      const startedAt = yield* Clock.currentTimeMillis
      const restored =
        request.source.kind === "RDS"
          ? yield* restoreDbInstance(clients.rds, request, newest, startedAt)
          : request.source.kind === "Aurora"
            ? yield* restoreDbCluster(clients.rds, request, newest, startedAt)
            : yield* createVolume(clients.ec2, request, newest, request.zone ?? "", startedAt)
      const now = yield* Clock.currentTimeMillis
      yield* printFailover(failoverResult(request.source.arn, region, newest, restored, now), where, request.json)
    })
  )
