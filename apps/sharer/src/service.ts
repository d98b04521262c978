import { Duration, Effect, Layer, Option } from "effect"
import { AllClientsLive, AwsConfig } from "@backup-actions/aws"
import { RecoveryPointStateChange, recoveryPointArnOf, subscribeTo, subscriptionSet, type EventOf } from "@backup-actions/contracts"
import { PolicySource, ROUTES, ServiceSettings, mayApply, replicaPlanFor } from "@backup-actions/config"
import { Publisher } from "@backup-actions/consumer"
import { Ledger, runStep } from "@backup-actions/ledger"
import { AccountAccess } from "./accounts"
import { replicateEbsSnapshot } from "./ebs"
import { failedReplica, publishReplica, replicaAction, type ReplicaJob } from "./job"
import { replicateDbSnapshot } from "./rds"
import { SourceSharing } from "./sharing"
import { CopySlots } from "./slots"
import { replicateRulesNeedTags, resourceTags } from "./source-tags"

/** The region and account fields of an ARN (`arn:partition:service:region:account:...`). */
const arnField = (arn: string, index: 3 | 4): string | undefined => {
  const value = arn.split(":")[index]
  return value === undefined || value === "" ? undefined : value
}

/** Copies the recovery point the way its resource type needs. */
export const replicate = (job: ReplicaJob) => {
  switch (job.resourceType) {
    case "EBS":
      return replicateEbsSnapshot(job)
    case "RDS":
    case "Aurora":
      return replicateDbSnapshot(job)
    default:
      return Effect.succeed(failedReplica(job, `the sharer does not replicate ${job.resourceType} recovery points`))
  }
}

/**
 * A completed recovery point: when a rule asks for a replica, copy it to the rule's
 * destination under a ledger step (a replayed event finds the step finished and does nothing)
 * and announce the outcome.
 */
export const onRecoveryPoint = (event: EventOf<typeof RecoveryPointStateChange>) =>
  Effect.gen(function* () {
    const policy = yield* PolicySource
    const settings = yield* ServiceSettings
    const access = yield* AccountAccess
    const { resourceType, resourceArn, backupVaultName } = event.detail
    if (!mayApply(policy, "replicate", resourceType)) return
    const recoveryPointArn = recoveryPointArnOf(event)
    if (recoveryPointArn === undefined) return yield* Effect.logWarning(`recovery point event ${event.id} names no recovery point`)
    const sourceRegion = arnField(recoveryPointArn, 3) ?? event.region
    const tags = replicateRulesNeedTags(policy, resourceType)
      ? yield* Effect.scoped(Effect.flatMap(access.clients({ region: sourceRegion }), (clients) => resourceTags(clients, resourceType, resourceArn)))
      : undefined
    const plan = replicaPlanFor(policy, { resourceType, resourceArn, vaultName: backupVaultName, ...(tags === undefined ? {} : { tags }) })
    if (plan === undefined) return
    const job: ReplicaJob = {
      recoveryPointArn,
      resourceArn,
      resourceType,
      sourceAccount: arnField(resourceArn, 4) ?? event.account ?? "",
      sourceRegion,
      plan
    }
    const result = yield* runStep({ recoveryPointArn, action: replicaAction(plan) }, { lease: Duration.seconds(settings.stepLeaseSeconds) }, () =>
      replicate(job)
    )
    if (Option.isSome(result)) yield* publishReplica(result.value.outcome)
  }).pipe(Effect.annotateLogs({ service: "sharer" }))

export const subscriptions = subscriptionSet(subscribeTo(ROUTES.sharer.recoveryPoints, onRecoveryPoint))

/** Everything the sharer's handler needs, from the environment. */
export const SharerLive = Layer.mergeAll(Ledger.Live, Publisher.Live, CopySlots.Live, SourceSharing.Live).pipe(
  Layer.provideMerge(AccountAccess.Live),
  Layer.provideMerge(Layer.mergeAll(AllClientsLive, ServiceSettings.fromEnv, PolicySource.fromEnv)),
  Layer.provideMerge(AwsConfig.fromEnv)
)
