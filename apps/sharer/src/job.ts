import { Clock, Effect } from "effect"
import type { AwsError } from "@backup-actions/aws"
import type { ReplicaPlan } from "@backup-actions/config"
import { ReplicaCompleted, type DetailOf } from "@backup-actions/contracts"
import { failed, type StepResult } from "@backup-actions/ledger"
import type { CopyFailed, CopyPending } from "./copy-wait"
import type { KeyRefused } from "./keys"

/** The detail of Replica Completed, which is also the step's outcome in the ledger. */
export type ReplicaDetail = DetailOf<typeof ReplicaCompleted>

/** One recovery point to copy to the destination its rule names. */
export interface ReplicaJob {
  readonly recoveryPointArn: string
  readonly resourceArn: string
  readonly resourceType: string
  /** Where the recovery point lives. */
  readonly sourceAccount: string
  readonly sourceRegion: string
  readonly plan: ReplicaPlan
}

/** The ledger action of one destination: a replayed event finds it finished and does nothing. */
export const replicaAction = (plan: Pick<ReplicaPlan, "destinationAccount" | "destinationRegion">): string =>
  `replicate:${plan.destinationAccount}:${plan.destinationRegion}`

/** The fields every outcome of the job carries, replicated or failed. */
export const replicaBase = (job: ReplicaJob) => ({
  schemaVersion: 1 as const,
  correlationId: job.recoveryPointArn,
  idempotencyKey: `${job.recoveryPointArn}#${replicaAction(job.plan)}`,
  sourceArn: job.recoveryPointArn,
  account: job.plan.destinationAccount,
  region: job.plan.destinationRegion,
  rule: job.plan.rule,
  resourceType: job.resourceType
})

/** A failed replica: the reason goes to the ledger and into Replica Completed; nothing is deleted. */
export const failedReplica = (job: ReplicaJob, reason: string): StepResult<ReplicaDetail> =>
  failed(reason, { ...replicaBase(job), status: "failed", reason })

/** The one-line reason for a failed AWS call. */
export const describeAwsFailure = (error: AwsError): string => `${error.operation} failed: ${error.code}: ${error.message}`

/** Seconds from the moment the source was taken to now, when the replica is complete. */
export const ageSince = (sourceTakenAt: Date | undefined) =>
  Effect.map(Clock.currentTimeMillis, (now) =>
    sourceTakenAt === undefined ? undefined : Math.max(0, Math.round((now - sourceTakenAt.getTime()) / 1000))
  )

/**
 * Every way a replica job can fail ends as a failed outcome with the reason, for EBS and DB
 * snapshots alike; the scope of the attempt (shares, intermediate copies) closes first.
 */
export const replicaOutcomeOf =
  (job: ReplicaJob) =>
  <R>(attempt: Effect.Effect<StepResult<ReplicaDetail>, AwsError | KeyRefused | CopyFailed | CopyPending, R>) =>
    attempt.pipe(
      Effect.scoped,
      Effect.catchTags({
        AwsError: (error) => Effect.succeed(failedReplica(job, describeAwsFailure(error))),
        KeyRefused: (error) => Effect.succeed(failedReplica(job, error.reason)),
        CopyFailed: (error) => Effect.succeed(failedReplica(job, `copy ${error.snapshotId} failed: ${error.message}`)),
        CopyPending: (error) => Effect.succeed(failedReplica(job, `copy ${error.snapshotId} was still pending (${error.progress}) after 24 hours`))
      }),
      Effect.annotateLogs({ recoveryPoint: job.recoveryPointArn, destination: `${job.plan.destinationAccount}/${job.plan.destinationRegion}` })
    )
