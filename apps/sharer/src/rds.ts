import {
  CopyDBSnapshotCommand,
  DeleteDBSnapshotCommand,
  DescribeDBSnapshotsCommand,
  ModifyDBSnapshotAttributeCommand,
  type DBSnapshot,
  type RDSClient
} from "@aws-sdk/client-rds"
import { Clock, Duration, Effect } from "effect"
import { awsCall, sharerDbSnapshotReplicas, undefinedWhenNotFound } from "@backup-actions/aws"
import { succeeded, type StepResult } from "@backup-actions/ledger"
import { AccountAccess, type RegionClients } from "./accounts"
import { CopyFailed, CopyPending } from "./copy-wait"
import { replicaOutcomeOf, waitUntilCopied } from "./ebs"
import { ageSince, failedReplica, replicaBase, type ReplicaDetail, type ReplicaJob } from "./job"
import { isAwsManagedKey, resolveDestinationKey } from "./keys"
import { CopySlots, destinationKey } from "./slots"
import { CREATED_AT_TAG, MANAGED_BY_TAG, SHARER, SOURCE_RESOURCE_TAG, replicaTags, tagValue } from "./tags"

/** The parts of a DB snapshot ARN (`arn:partition:rds:region:account:snapshot:name`). */
export const parseDbSnapshotArn = (arn: string) => {
  const match = /^arn:([^:]+):rds:([^:]+):(\d{12}):snapshot:(.+)$/.exec(arn)
  return match === null ? undefined : { partition: match[1] ?? "aws", region: match[2] ?? "", account: match[3] ?? "", name: match[4] ?? "" }
}

/**
 * A DB snapshot identifier made from a source name: letters, digits and single hyphens,
 * starting with a letter, at most 255 characters. AWS Backup's names (`awsbackup:job-...`)
 * are not valid identifiers as they are.
 */
export const dbSnapshotIdentifier = (prefix: string, sourceName: string): string =>
  `${prefix}-${sourceName}`
    .replace(/[^A-Za-z0-9]+/g, "-")
    .slice(0, 255)
    .replace(/-+$/, "")

const dbSnapshotArn = (partition: string, region: string, account: string, name: string) => `arn:${partition}:rds:${region}:${account}:snapshot:${name}`

const describeDbSnapshot = (rds: RDSClient, identifier: string) =>
  undefinedWhenNotFound(
    awsCall("rds:DescribeDBSnapshots", (abortSignal) => rds.send(new DescribeDBSnapshotsCommand({ DBSnapshotIdentifier: identifier }), { abortSignal })).pipe(
      Effect.map((result): DBSnapshot | undefined => result.DBSnapshots?.[0])
    )
  )

/** The statuses of a DB snapshot copy still being made; any other but available is a failed copy. */
const STILL_COPYING = new Set(["creating", "copying", "pending"])

/** Waits until the DB snapshot copy is available, on the same backoff as EBS copies. */
export const waitForDbSnapshot = (rds: RDSClient, identifier: string) =>
  waitUntilCopied(identifier, describeDbSnapshot(rds, identifier), (snapshot) =>
    snapshot.Status === "available"
      ? Effect.succeed(snapshot)
      : STILL_COPYING.has(snapshot.Status ?? "")
        ? new CopyPending({ snapshotId: identifier, progress: `${snapshot.PercentProgress ?? 0}%` })
        : new CopyFailed({ snapshotId: identifier, message: `the copy is ${snapshot.Status ?? "in an unknown state"}` })
  )

const copyDbSnapshot = (
  rds: RDSClient,
  /** `from` is an ARN: when its region is another, the SDK adds the pre-signed URL a cross-region copy needs. */
  input: { readonly from: string; readonly to: string; readonly kmsKeyId: string; readonly tags: ReturnType<typeof replicaTags> }
) =>
  awsCall("rds:CopyDBSnapshot", (abortSignal) =>
    rds.send(
      new CopyDBSnapshotCommand({
        SourceDBSnapshotIdentifier: input.from,
        TargetDBSnapshotIdentifier: input.to,
        KmsKeyId: input.kmsKeyId,
        Tags: input.tags
      }),
      { abortSignal }
    )
  )

const deleteDbSnapshot = (rds: RDSClient, identifier: string) =>
  awsCall("rds:DeleteDBSnapshot", (abortSignal) => rds.send(new DeleteDBSnapshotCommand({ DBSnapshotIdentifier: identifier }), { abortSignal }))

/** The source's `restore` attribute names the destination account while the scope is open. */
const shareDbSnapshot = (rds: RDSClient, identifier: string, account: string) =>
  Effect.acquireRelease(
    awsCall("rds:ModifyDBSnapshotAttribute", (abortSignal) =>
      rds.send(new ModifyDBSnapshotAttributeCommand({ DBSnapshotIdentifier: identifier, AttributeName: "restore", ValuesToAdd: [account] }), { abortSignal })
    ),
    () =>
      awsCall("rds:ModifyDBSnapshotAttribute", (abortSignal) =>
        rds.send(new ModifyDBSnapshotAttributeCommand({ DBSnapshotIdentifier: identifier, AttributeName: "restore", ValuesToRemove: [account] }), { abortSignal })
      ).pipe(Effect.catchTag("AwsError", (error) => Effect.logWarning(`could not take back the share of ${identifier} with ${account}: ${error.message}`)))
  )

/**
 * Deletes the sharer's available DB snapshot replicas of the instance older than the retention
 * (by their tagged creation time), except the one just made. Returns the identifiers deleted.
 */
export const pruneDbReplicas = (
  rds: RDSClient,
  options: { readonly instanceId: string; readonly sourceResourceArn: string; readonly keepIdentifier: string; readonly retentionDays: number }
) =>
  Effect.gen(function* () {
    const now = yield* Clock.currentTimeMillis
    const limit = now - Duration.toMillis(Duration.days(options.retentionDays))
    const replicas = yield* sharerDbSnapshotReplicas(rds, { tag: SOURCE_RESOURCE_TAG, value: options.sourceResourceArn, instanceId: options.instanceId })
    const expired = replicas.flatMap((snapshot) => {
      const createdAt = Date.parse(tagValue(snapshot.TagList, CREATED_AT_TAG) ?? "")
      const identifier = snapshot.DBSnapshotIdentifier
      const isExpired = identifier !== undefined && identifier !== options.keepIdentifier && snapshot.Status === "available" && Number.isFinite(createdAt) && createdAt < limit
      return isExpired ? [identifier] : []
    })
    const deleted: Array<string> = []
    for (const identifier of expired) {
      const gone = yield* deleteDbSnapshot(rds, identifier).pipe(
        Effect.as(true),
        Effect.catchTag("AwsError", (error) =>
          error.kind === "not-found" ? Effect.succeed(true) : Effect.logWarning(`retention could not delete ${identifier}: ${error.message}`).pipe(Effect.as(false))
        )
      )
      if (gone) deleted.push(identifier)
    }
    return deleted
  })

/**
 * Copies an RDS DB snapshot into the rule's destination account and region on the
 * destination's key. Within one account it is one (cross-region) copy. Into another account
 * the source is shared through its `restore` attribute; across regions too, the destination
 * account first copies it in the source region on its staging key, copies that across, and
 * deletes the intermediate on every outcome. A source on the default aws/rds key can't be
 * shared: that is a failed outcome that says how to fix it.
 */
export const replicateDbSnapshot = (job: ReplicaJob) =>
  Effect.gen(function* () {
    const access = yield* AccountAccess
    const slots = yield* CopySlots
    const { plan } = job
    const source = parseDbSnapshotArn(job.recoveryPointArn)
    if (source === undefined) {
      return failedReplica(job, `recovery point "${job.recoveryPointArn}" is not an RDS DB snapshot ARN (Aurora cluster snapshots are not replicated yet)`)
    }
    const crossAccount = plan.destinationAccount !== source.account
    const crossRegion = plan.destinationRegion !== source.region
    if (crossAccount && plan.roleArn === undefined) {
      return failedReplica(job, `rule "${plan.rule}" copies from account ${source.account} to ${plan.destinationAccount} but names no roleArn and externalId to assume there`)
    }
    const role = crossAccount ? { roleArn: plan.roleArn, externalId: plan.externalId } : {}
    const where = `account ${plan.destinationAccount}, ${plan.destinationRegion}`
    const sourceClients = yield* access.clients({ region: source.region })
    const destination = yield* access.clients({ region: plan.destinationRegion, ...role })

    const snapshot = yield* describeDbSnapshot(sourceClients.rds, source.name)
    if (snapshot === undefined) return failedReplica(job, `source DB snapshot ${source.name} does not exist in account ${source.account}, ${source.region}`)
    if (snapshot.Status !== "available") return failedReplica(job, `source DB snapshot ${source.name} is ${snapshot.Status ?? "in an unknown state"}, not available`)
    const keyArn = yield* resolveDestinationKey(destination.kms, plan.kmsKeyId, where)
    if (crossAccount && snapshot.Encrypted === true && snapshot.KmsKeyId !== undefined) {
      const awsManaged = yield* isAwsManagedKey(sourceClients.kms, snapshot.KmsKeyId)
      if (awsManaged) {
        return failedReplica(
          job,
          `source DB snapshot ${source.name} is encrypted with the default key aws/rds, which can't be shared with account ${plan.destinationAccount}; ` +
            `fix: copy it (or back the instance up) with a customer managed key whose key policy lets account ${plan.destinationAccount} use it`
        )
      }
    }
    const staging = crossAccount && crossRegion
    if (staging && plan.stagingKmsKeyId === undefined) {
      return failedReplica(
        job,
        `rule "${plan.rule}" copies a DB snapshot to another account and region: it needs stagingKmsKeyId, a key of account ${plan.destinationAccount} in ${source.region}, for the intermediate copy`
      )
    }

    const now = yield* Clock.currentTimeMillis
    const tags = replicaTags({
      sourceArn: job.recoveryPointArn,
      sourceResourceArn: job.resourceArn,
      sourceAccount: source.account,
      rule: plan.rule,
      createdAt: new Date(now),
      sourceCreatedAt: snapshot.OriginalSnapshotCreateTime ?? snapshot.SnapshotCreateTime,
      name: `DR replica of ${source.name}`
    })
    const replicaName = dbSnapshotIdentifier("dr", source.name)
    const copy = Effect.gen(function* () {
      const earlier = yield* describeDbSnapshot(destination.rds, replicaName)
      if (earlier !== undefined && tagValue(earlier.TagList, MANAGED_BY_TAG) === SHARER) {
        yield* Effect.logInfo(`reusing the earlier copy ${replicaName}`)
        return yield* waitForDbSnapshot(destination.rds, replicaName)
      }
      if (crossAccount) yield* shareDbSnapshot(sourceClients.rds, source.name, plan.destinationAccount)
      let copyFrom = job.recoveryPointArn
      if (staging) {
        const atSource: RegionClients = yield* access.clients({ region: source.region, ...role })
        const stagingKey = yield* resolveDestinationKey(atSource.kms, plan.stagingKmsKeyId ?? "", `account ${plan.destinationAccount}, ${source.region}`)
        const stagingName = dbSnapshotIdentifier("dr-staging", source.name)
        yield* Effect.acquireRelease(copyDbSnapshot(atSource.rds, { from: job.recoveryPointArn, to: stagingName, kmsKeyId: stagingKey, tags }), () =>
          deleteDbSnapshot(atSource.rds, stagingName).pipe(
            Effect.catchTag("AwsError", (error) =>
              error.kind === "not-found" ? Effect.void : Effect.logError(`could not delete the intermediate copy ${stagingName}: ${error.message}`)
            )
          )
        )
        yield* waitForDbSnapshot(atSource.rds, stagingName)
        copyFrom = dbSnapshotArn(source.partition, source.region, plan.destinationAccount, stagingName)
      }
      yield* copyDbSnapshot(destination.rds, { from: copyFrom, to: replicaName, kmsKeyId: keyArn, tags })
      yield* Effect.logInfo(`copying ${source.name} to ${replicaName} in ${where}`)
      return yield* waitForDbSnapshot(destination.rds, replicaName)
    })
    const replica = yield* slots.withSlot(destinationKey(plan.destinationAccount, plan.destinationRegion), plan.maxConcurrentCopies, Effect.scoped(copy))
    if (replica.Encrypted !== true || replica.KmsKeyId !== keyArn) {
      return failedReplica(job, `copy ${replicaName} is on key ${replica.KmsKeyId ?? "none"}, not the destination's ${keyArn}; it was kept for inspection`)
    }
    const instanceId = /:db:([^:]+)$/.exec(job.resourceArn)?.[1] ?? snapshot.DBInstanceIdentifier ?? ""
    const pruned = yield* pruneDbReplicas(destination.rds, {
      instanceId,
      sourceResourceArn: job.resourceArn,
      keepIdentifier: replicaName,
      retentionDays: plan.retentionDays
    })
    const age = yield* ageSince(snapshot.SnapshotCreateTime)
    const result: StepResult<ReplicaDetail> = succeeded({
      ...replicaBase(job),
      status: "replicated",
      replicaArn: dbSnapshotArn(source.partition, plan.destinationRegion, plan.destinationAccount, replicaName),
      kmsKeyId: keyArn,
      ...(age === undefined ? {} : { replicaAgeSeconds: age }),
      prunedReplicaArns: pruned.map((name) => dbSnapshotArn(source.partition, plan.destinationRegion, plan.destinationAccount, name))
    })
    return result
  }).pipe(replicaOutcomeOf(job))
