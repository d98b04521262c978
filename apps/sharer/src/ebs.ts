import { CopySnapshotCommand, DescribeSnapshotsCommand, type EC2Client, type Snapshot } from "@aws-sdk/client-ec2"
import { Clock, Effect } from "effect"
import { AccountAccess, SourceSharing, awsCall, undefinedWhenNotFound } from "@backup-actions/aws"
import { snapshotIdFromArn } from "@backup-actions/contracts"
import { succeeded, type StepResult } from "@backup-actions/ledger"
import { CopyFailed, CopyPending, waitUntilCopied } from "./copy-wait"
import { ageSince, failedReplica, replicaBase, replicaOutcomeOf, type ReplicaDetail, type ReplicaJob } from "./job"
import { isAwsManagedKey, resolveDestinationKey } from "./keys"
import { pruneReplicas, replicasOf } from "./retention"
import { CopySlots, destinationKey } from "./slots"
import { SOURCE_ARN_TAG, replicaTags, tagValue } from "./tags"

const describeSnapshot = (ec2: EC2Client, snapshotId: string) =>
  undefinedWhenNotFound(
    awsCall("ec2:DescribeSnapshots", (abortSignal) => ec2.send(new DescribeSnapshotsCommand({ SnapshotIds: [snapshotId] }), { abortSignal })).pipe(
      Effect.map((result): Snapshot | undefined => result.Snapshots?.[0])
    )
  )

/** Waits until the copy is completed, on the backoff schedule; returns the completed snapshot. */
export const waitForCopy = (ec2: EC2Client, snapshotId: string) =>
  waitUntilCopied(snapshotId, describeSnapshot(ec2, snapshotId), (snapshot) =>
    snapshot.State === "completed"
      ? Effect.succeed(snapshot)
      : snapshot.State === "error"
        ? new CopyFailed({ snapshotId, message: snapshot.StateMessage ?? "the copy ended in the error state" })
        : new CopyPending({ snapshotId, progress: snapshot.Progress ?? "" })
  )

const snapshotArnIn = (partition: string, region: string, snapshotId: string): string => `arn:${partition}:ec2:${region}::snapshot/${snapshotId}`

/**
 * Copies an EBS snapshot into the rule's destination account and region, encrypted with the
 * destination's own key and tagged as the sharer's, waits until the copy is complete, then
 * applies retention there. Every way this can fail ends as a failed outcome with a reason;
 * nothing on the source side is deleted.
 */
export const replicateEbsSnapshot = (job: ReplicaJob) =>
  Effect.gen(function* () {
    const access = yield* AccountAccess
    const sharing = yield* SourceSharing
    const slots = yield* CopySlots
    const { plan } = job
    const snapshotId = snapshotIdFromArn(job.recoveryPointArn)
    if (snapshotId === undefined) return failedReplica(job, `recovery point "${job.recoveryPointArn}" is not an EBS snapshot ARN`)
    const crossAccount = plan.destinationAccount !== job.sourceAccount
    if (crossAccount && plan.roleArn === undefined) {
      return failedReplica(
        job,
        `rule "${plan.rule}" copies from account ${job.sourceAccount} to ${plan.destinationAccount} but names no roleArn and externalId to assume there`
      )
    }
    const role = crossAccount ? { roleArn: plan.roleArn, externalId: plan.externalId } : {}
    const where = `account ${plan.destinationAccount}, ${plan.destinationRegion}`
    const partition = job.recoveryPointArn.split(":")[1] ?? "aws"

    const source = yield* access.clients({ region: job.sourceRegion })
    const destination = yield* access.clients({ region: plan.destinationRegion, ...role })

    const sourceSnapshot = yield* describeSnapshot(source.ec2, snapshotId)
    if (sourceSnapshot === undefined) {
      return failedReplica(job, `source snapshot ${snapshotId} does not exist in account ${job.sourceAccount}, ${job.sourceRegion}`)
    }
    if (sourceSnapshot.State !== "completed") {
      return failedReplica(job, `source snapshot ${snapshotId} is ${sourceSnapshot.State ?? "in an unknown state"}, not completed`)
    }
    const keyArn = yield* resolveDestinationKey(destination.kms, plan.kmsKeyId, where)
    if (sourceSnapshot.KmsKeyId === keyArn) {
      return failedReplica(job, `kmsKeyId ${plan.kmsKeyId} is the source snapshot's own key; a replica must be on the destination's key`)
    }
    if (crossAccount && sourceSnapshot.Encrypted === true && sourceSnapshot.KmsKeyId !== undefined) {
      const awsManaged = yield* isAwsManagedKey(source.kms, sourceSnapshot.KmsKeyId)
      if (awsManaged) {
        return failedReplica(
          job,
          `source snapshot ${snapshotId} is encrypted with the AWS managed key aws/ebs, which can't be shared with account ${plan.destinationAccount}; ` +
            `fix: back the volume up with a customer managed key whose key policy lets account ${plan.destinationAccount} use it`
        )
      }
    }

    const shareRequest = {
      snapshotId,
      sourceArn: job.recoveryPointArn,
      volumeSizeGiB: sourceSnapshot.VolumeSize ?? 1,
      source,
      destinationAccount: plan.destinationAccount,
      destinationAtSource: { region: job.sourceRegion, ...role }
    }
    const copy = Effect.gen(function* () {
      // A copy made by an earlier attempt (the worker died before the ledger heard of it) is reused, not made twice.
      const earlier = (yield* replicasOf(destination.ec2, job.resourceArn)).find(
        (snapshot) => tagValue(snapshot.Tags, SOURCE_ARN_TAG) === job.recoveryPointArn && snapshot.State !== "error"
      )
      if (earlier?.SnapshotId !== undefined && earlier.State === "completed") return earlier
      const copyFrom = crossAccount ? yield* sharing.share(shareRequest) : snapshotId
      if (earlier?.SnapshotId !== undefined) {
        yield* Effect.logInfo(`waiting for the earlier copy ${earlier.SnapshotId} of ${snapshotId}`)
        return yield* waitForCopy(destination.ec2, earlier.SnapshotId)
      }
      const now = yield* Clock.currentTimeMillis
      const copied = yield* awsCall("ec2:CopySnapshot", (abortSignal) =>
        destination.ec2.send(
          new CopySnapshotCommand({
            SourceRegion: job.sourceRegion,
            SourceSnapshotId: copyFrom,
            Encrypted: true,
            KmsKeyId: keyArn,
            Description: `DR replica of ${snapshotId} from account ${job.sourceAccount}, ${job.sourceRegion}`,
            TagSpecifications: [
              {
                ResourceType: "snapshot",
                Tags: replicaTags({
                  sourceArn: job.recoveryPointArn,
                  sourceResourceArn: job.resourceArn,
                  sourceAccount: job.sourceAccount,
                  rule: plan.rule,
                  createdAt: new Date(now),
                  sourceCreatedAt: sourceSnapshot.StartTime,
                  name: `DR replica of ${snapshotId}`
                })
              }
            ]
          }),
          { abortSignal }
        )
      )
      const replicaId = copied.SnapshotId ?? ""
      yield* Effect.logInfo(`copying ${snapshotId} to ${replicaId} in ${where}`)
      return yield* waitForCopy(destination.ec2, replicaId)
    })
    const replica = yield* slots.withSlot(destinationKey(plan.destinationAccount, plan.destinationRegion), plan.maxConcurrentCopies, Effect.scoped(copy))
    const replicaId = replica.SnapshotId ?? ""
    if (replica.Encrypted !== true || replica.KmsKeyId !== keyArn) {
      return failedReplica(job, `copy ${replicaId} is on key ${replica.KmsKeyId ?? "none"}, not the destination's ${keyArn}; it was kept for inspection`)
    }
    const pruned = yield* pruneReplicas(destination.ec2, { sourceResourceArn: job.resourceArn, keepSnapshotId: replicaId, retentionDays: plan.retentionDays })
    const age = yield* ageSince(sourceSnapshot.StartTime)
    yield* Effect.logInfo(`replicated ${snapshotId} to ${replicaId} in ${where}`)
    const result: StepResult<ReplicaDetail> = succeeded({
      ...replicaBase(job),
      status: "replicated",
      replicaArn: snapshotArnIn(partition, plan.destinationRegion, replicaId),
      kmsKeyId: keyArn,
      ...(age === undefined ? {} : { replicaAgeSeconds: age }),
      prunedReplicaArns: pruned.map((id) => snapshotArnIn(partition, plan.destinationRegion, id))
    })
    return result
  }).pipe(replicaOutcomeOf(job))
