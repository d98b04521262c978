import { Effect, Layer } from "effect"
import { SharerAccountAccess } from "./accounts"
import { AwsConfig, Backup, DynamoDb, Ec2, EventBridge, Kms, ProtectedResources, Rds, recoveryPointFacts, recoveryPointSubject, SourceSharing, Sqs, Sts } from "@backup-actions/aws"
import { RecoveryPointStateChange, ReplicaCatchUpDue, subscribe, subscribeTo, subscriptionSet, type EventOf } from "@backup-actions/contracts"
import { PolicySource, ROUTES, ServiceSettings, mayApply, needsTags, replicaPlanFor } from "@backup-actions/config"
import { Publisher, requireRecoveryPoint } from "@backup-actions/consumer"
import { Ledger } from "@backup-actions/ledger"
import { catchUpReplicas } from "./catch-up"
import type { ReplicaJob } from "./job"
import { replicateUnderStep } from "./replica-step"
import { CopySlots } from "./slots"

/** The region and account fields of an ARN (`arn:partition:service:region:account:...`). */
const arnField = (arn: string, index: 3 | 4): string | undefined => {
  const value = arn.split(":")[index]
  return value === undefined || value === "" ? undefined : value
}

/**
 * A completed recovery point: when a rule asks for a replica (by its type, vault, resource and,
 * when a rule asks, the protected resource's tags), copy it to the rule's destination under a
 * ledger step (a replayed event finds the step finished and does nothing) and announce the
 * outcome. An event that names no recovery point is rejected to the DLQ when a rule may ask for
 * a replica of it.
 */
export const onRecoveryPoint = (event: EventOf<typeof RecoveryPointStateChange>) =>
  Effect.gen(function* () {
    const policy = yield* PolicySource
    const facts = recoveryPointFacts(event)
    if (!mayApply(policy, "replicate", facts)) return
    const recoveryPointArn = yield* requireRecoveryPoint(event)
    const point = yield* recoveryPointSubject(event, recoveryPointArn, { lookUpTags: needsTags(policy, "replicate", facts) })
    const plan = replicaPlanFor(policy, point)
    if (plan === undefined) return
    const { resourceType, resourceArn } = point
    const sourceRegion = arnField(recoveryPointArn, 3) ?? event.region
    const job: ReplicaJob = {
      recoveryPointArn,
      resourceArn,
      resourceType,
      sourceAccount: arnField(resourceArn, 4) ?? event.account ?? "",
      sourceRegion,
      plan
    }
    yield* replicateUnderStep(job)
  }).pipe(Effect.annotateLogs({ service: "sharer" }))

/** The scheduled catch-up: every selected source of the window that has no finished replica step yet. */
export const onReplicaCatchUpDue = (event: { readonly detail: { readonly lookBackDays: number } }) =>
  catchUpReplicas({ lookBackDays: event.detail.lookBackDays }).pipe(Effect.asVoid, Effect.annotateLogs({ service: "sharer" }))

export const subscriptions = subscriptionSet(subscribeTo(ROUTES.sharer.recoveryPoints, onRecoveryPoint), subscribe(ReplicaCatchUpDue, onReplicaCatchUpDue))

/**
 * The sharer's own services, over whichever clients, settings and policy the caller provides.
 * What differs off AWS (SourceSharing) is left to the assembly: SharerLive gives AWS's, another
 * assembly its own.
 */
export const SharerServices = Layer.mergeAll(Ledger.Live, Publisher.Live, CopySlots.Live, ProtectedResources.Live).pipe(Layer.provideMerge(SharerAccountAccess))

/** The clients this service calls and no others (a smaller bundle, a faster cold start), and its settings and policy, from the environment. */
export const SharerClients = Layer.mergeAll(Ec2.Live, Rds.Live, Kms.Live, Sts.Live, Sqs.Live, EventBridge.Live, DynamoDb.Live, Backup.Live, ServiceSettings.fromEnv, PolicySource.fromEnv).pipe(
  Layer.provideMerge(AwsConfig.fromEnv)
)

/** Everything the sharer's handler needs on AWS, from the environment. */
export const SharerLive = SharerServices.pipe(Layer.provideMerge(SourceSharing.Live), Layer.provideMerge(SharerClients))
