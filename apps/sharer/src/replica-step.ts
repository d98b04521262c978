import { Effect } from "effect"
import { ReplicaCompleted } from "@backup-actions/contracts"
import { runStep } from "@backup-actions/consumer"
import { isClusterSnapshotArn, replicateClusterSnapshot } from "./aurora"
import { replicateEbsSnapshot } from "./ebs"
import { failedReplica, replicaAction, type ReplicaJob } from "./job"
import { replicateDbSnapshot } from "./rds"

/**
 * Copies the recovery point the way its resource type needs. An RDS or Aurora recovery point
 * goes by its ARN: a DB cluster snapshot (Aurora, or a Multi-AZ DB cluster that AWS Backup
 * reports as RDS) takes the cluster snapshot calls, a DB snapshot the instance ones.
 */
export const replicate = (job: ReplicaJob) => {
  switch (job.resourceType) {
    case "EBS":
      return replicateEbsSnapshot(job)
    case "RDS":
    case "Aurora":
      return isClusterSnapshotArn(job.recoveryPointArn) ? replicateClusterSnapshot(job) : replicateDbSnapshot(job)
    default:
      return Effect.succeed(failedReplica(job, `the sharer does not replicate ${job.resourceType} recovery points`))
  }
}

/**
 * The one ledger step of a replica, for the event and the scheduled catch-up alike: a finished
 * step does nothing; otherwise the copy runs and its outcome is announced. Returns how it ended,
 * or None when the step had already finished.
 */
export const replicateUnderStep = (job: ReplicaJob) =>
  Effect.gen(function* () {
    const spec = {
      step: { recoveryPointArn: job.recoveryPointArn, action: replicaAction(job.plan) },
      contract: ReplicaCompleted,
      resources: [job.recoveryPointArn],
      gaveUp: (reason: string) => failedReplica(job, reason).outcome
    }
    return yield* runStep(spec, () => replicate(job))
  })
