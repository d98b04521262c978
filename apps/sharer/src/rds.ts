import {
  CopyDBSnapshotCommand,
  DeleteDBSnapshotCommand,
  DescribeDBSnapshotsCommand,
  ModifyDBSnapshotAttributeCommand,
  type DBSnapshot,
  type RDSClient
} from "@aws-sdk/client-rds"
import { Clock, Duration, Effect } from "effect"
import { AccountAccess, awsCall, type AwsError, type RegionClients, type ReplicaSelector, sharerDbSnapshotReplicas, type TagList, undefinedWhenNotFound } from "@backup-actions/aws"
import { succeeded, type StepResult } from "@backup-actions/ledger"
import { CopyFailed, CopyPending, waitUntilCopied } from "./copy-wait"
import { ageSince, failedReplica, replicaBase, replicaOutcomeOf, type ReplicaDetail, type ReplicaJob } from "./job"
import { isAwsManagedKey, resolveDestinationKey } from "./keys"
import { CopySlots, destinationKey } from "./slots"
import { CREATED_AT_TAG, MANAGED_BY_TAG, SHARER, SOURCE_RESOURCE_TAG, replicaTags, tagValue } from "./tags"

/** An RDS snapshot as the replica path reads it, whether of a DB instance or of a DB cluster. */
export interface RdsSnapshot {
  readonly identifier: string | undefined
  readonly status: string | undefined
  readonly percentProgress: number | undefined
  readonly encrypted: boolean | undefined
  readonly kmsKeyId: string | undefined
  /** When this snapshot was made: for a copy, when the copy was made. */
  readonly createdAt: Date | undefined
  /** When its data was taken: for a copy, the original's time when RDS keeps it. */
  readonly takenAt: Date | undefined
  /** The DB instance or DB cluster it was taken of. */
  readonly sourceId: string | undefined
  readonly tags: TagList
}

/** One copy into the client's account and region. */
export interface RdsCopyRequest {
  /** An ARN: when its region is another, the SDK's RDS middleware adds the pre-signed URL a cross-region copy needs. */
  readonly from: string
  readonly to: string
  readonly kmsKeyId: string
  readonly tags: ReturnType<typeof replicaTags>
}

/**
 * What differs between DB instance snapshots and Aurora DB cluster snapshots: their API calls,
 * their ARNs and how a reason names them. Sharing, staging, copying, waiting, checking the key
 * and retention are the same for both, so they are written once against this.
 */
export interface RdsSnapshotKind {
  /** How reasons name such a snapshot. */
  readonly noun: "DB snapshot" | "DB cluster snapshot"
  /** How reasons name what it is taken of. */
  readonly sourceNoun: "instance" | "cluster"
  /** The resource type in the snapshot's ARN. */
  readonly arnType: "snapshot" | "cluster-snapshot"
  /** The resource type in the ARN of the instance or cluster (AWS Backup's resourceArn). */
  readonly sourceArnType: "db" | "cluster"
  readonly describe: (rds: RDSClient, identifier: string) => Effect.Effect<RdsSnapshot | undefined, AwsError>
  readonly copy: (rds: RDSClient, request: RdsCopyRequest) => Effect.Effect<unknown, AwsError>
  readonly delete: (rds: RDSClient, identifier: string) => Effect.Effect<unknown, AwsError>
  /** Adds an account to, or removes one from, the snapshot's `restore` attribute. */
  readonly modifyRestore: (rds: RDSClient, identifier: string, change: "add" | "remove", account: string) => Effect.Effect<unknown, AwsError>
  /** The sharer's replicas that the selector picks, narrowed to the instance or cluster when it is known. */
  readonly sharerReplicas: (rds: RDSClient, selector: ReplicaSelector, sourceId: string | undefined) => Effect.Effect<ReadonlyArray<RdsSnapshot>, AwsError>
}

const fromDbSnapshot = (snapshot: DBSnapshot): RdsSnapshot => ({
  identifier: snapshot.DBSnapshotIdentifier,
  status: snapshot.Status,
  percentProgress: snapshot.PercentProgress,
  encrypted: snapshot.Encrypted,
  kmsKeyId: snapshot.KmsKeyId,
  createdAt: snapshot.SnapshotCreateTime,
  takenAt: snapshot.OriginalSnapshotCreateTime ?? snapshot.SnapshotCreateTime,
  sourceId: snapshot.DBInstanceIdentifier,
  tags: snapshot.TagList
})

/** DB instance snapshots (resource type RDS). */
export const DB_SNAPSHOTS: RdsSnapshotKind = {
  noun: "DB snapshot",
  sourceNoun: "instance",
  arnType: "snapshot",
  sourceArnType: "db",
  describe: (rds, identifier) =>
    undefinedWhenNotFound(
      awsCall("rds:DescribeDBSnapshots", (abortSignal) => rds.send(new DescribeDBSnapshotsCommand({ DBSnapshotIdentifier: identifier }), { abortSignal })).pipe(
        Effect.map((result) => {
          const snapshot = result.DBSnapshots?.[0]
          return snapshot === undefined ? undefined : fromDbSnapshot(snapshot)
        })
      )
    ),
  copy: (rds, request) =>
    awsCall("rds:CopyDBSnapshot", (abortSignal) =>
      rds.send(
        new CopyDBSnapshotCommand({
          SourceDBSnapshotIdentifier: request.from,
          TargetDBSnapshotIdentifier: request.to,
          KmsKeyId: request.kmsKeyId,
          CopyTags: false,
          Tags: request.tags
        }),
        { abortSignal }
      )
    ),
  delete: (rds, identifier) =>
    awsCall("rds:DeleteDBSnapshot", (abortSignal) => rds.send(new DeleteDBSnapshotCommand({ DBSnapshotIdentifier: identifier }), { abortSignal })),
  modifyRestore: (rds, identifier, change, account) =>
    awsCall("rds:ModifyDBSnapshotAttribute", (abortSignal) =>
      rds.send(
        new ModifyDBSnapshotAttributeCommand({
          DBSnapshotIdentifier: identifier,
          AttributeName: "restore",
          ...(change === "add" ? { ValuesToAdd: [account] } : { ValuesToRemove: [account] })
        }),
        { abortSignal }
      )
    ),
  sharerReplicas: (rds, selector, instanceId) => Effect.map(sharerDbSnapshotReplicas(rds, { ...selector, instanceId }), (snapshots) => snapshots.map(fromDbSnapshot))
}

/** The parts of an RDS snapshot ARN (`arn:partition:rds:region:account:snapshot:name`, or `cluster-snapshot:name`). */
export const parseRdsSnapshotArn = (arn: string) => {
  const match = /^arn:([^:]+):rds:([^:]+):(\d{12}):(snapshot|cluster-snapshot):(.+)$/.exec(arn)
  return match === null
    ? undefined
    : { partition: match[1] ?? "aws", region: match[2] ?? "", account: match[3] ?? "", arnType: match[4] ?? "", name: match[5] ?? "" }
}

/**
 * A DB (cluster) snapshot identifier made from a source name: lower-case letters, digits and
 * single hyphens, starting with a letter, at most 255 characters. AWS Backup's names
 * (`awsbackup:job-...`) are not valid identifiers as they are, and RDS keeps identifiers in
 * lower case, so the replica's ARN is the one RDS reports.
 */
export const dbSnapshotIdentifier = (prefix: string, sourceName: string): string =>
  `${prefix}-${sourceName}`
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .slice(0, 255)
    .replace(/-+$/, "")

const rdsSnapshotArn = (kind: RdsSnapshotKind, at: { readonly partition: string; readonly region: string; readonly account: string }, name: string) =>
  `arn:${at.partition}:rds:${at.region}:${at.account}:${kind.arnType}:${name}`

/** The statuses of a snapshot copy still being made; any other but available is a failed copy. */
const STILL_COPYING = new Set(["creating", "copying", "pending"])

/** Waits until the copy is available, on the same backoff as EBS copies. */
export const waitForRdsSnapshot = (kind: RdsSnapshotKind, rds: RDSClient, identifier: string) =>
  waitUntilCopied(identifier, kind.describe(rds, identifier), (snapshot) =>
    snapshot.status === "available"
      ? Effect.succeed(snapshot)
      : STILL_COPYING.has(snapshot.status ?? "")
        ? new CopyPending({ snapshotId: identifier, progress: `${snapshot.percentProgress ?? 0}%` })
        : new CopyFailed({ snapshotId: identifier, message: `the copy is ${snapshot.status ?? "in an unknown state"}` })
  )

/** The source's `restore` attribute names the destination account while the scope is open. */
const shareRdsSnapshot = (kind: RdsSnapshotKind, rds: RDSClient, identifier: string, account: string) =>
  Effect.acquireRelease(kind.modifyRestore(rds, identifier, "add", account), () =>
    kind
      .modifyRestore(rds, identifier, "remove", account)
      .pipe(Effect.catchTag("AwsError", (error) => Effect.logWarning(`could not take back the share of ${identifier} with ${account}: ${error.message}`)))
  )

/**
 * Deletes the sharer's available replicas of the resource older than the retention (by their
 * tagged creation time), except the one just made. A snapshot without the sharer's tags, or
 * without a readable creation time, is never deleted. Returns the identifiers deleted.
 */
export const pruneRdsReplicas = (
  kind: RdsSnapshotKind,
  rds: RDSClient,
  options: { readonly sourceId: string | undefined; readonly sourceResourceArn: string; readonly keepIdentifier: string; readonly retentionDays: number }
) =>
  Effect.gen(function* () {
    const now = yield* Clock.currentTimeMillis
    const limit = now - Duration.toMillis(Duration.days(options.retentionDays))
    const replicas = yield* kind.sharerReplicas(rds, { tag: SOURCE_RESOURCE_TAG, value: options.sourceResourceArn }, options.sourceId)
    const expired = replicas.flatMap((snapshot) => {
      const createdAt = Date.parse(tagValue(snapshot.tags, CREATED_AT_TAG) ?? "")
      const identifier = snapshot.identifier
      const isExpired = identifier !== undefined && identifier !== options.keepIdentifier && snapshot.status === "available" && Number.isFinite(createdAt) && createdAt < limit
      return isExpired ? [identifier] : []
    })
    const deleted: Array<string> = []
    for (const identifier of expired) {
      const gone = yield* kind.delete(rds, identifier).pipe(
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
 * Copies an RDS snapshot (of a DB instance or an Aurora DB cluster, as `kind` says) into the
 * rule's destination account and region on the destination's key. Within one account it is one
 * (cross-region) copy. Into another account the source is shared through its `restore`
 * attribute; across regions too, the destination account first copies it in the source region
 * on its staging key (RDS copies a shared encrypted snapshot only within its region), copies
 * that across, and deletes the intermediate on every outcome. A source on the default aws/rds
 * key can't be shared: that is a failed outcome that says how to fix it.
 */
export const replicateRdsSnapshot = (kind: RdsSnapshotKind, job: ReplicaJob) =>
  Effect.gen(function* () {
    const access = yield* AccountAccess
    const slots = yield* CopySlots
    const { plan } = job
    const source = parseRdsSnapshotArn(job.recoveryPointArn)
    if (source === undefined || source.arnType !== kind.arnType) {
      return failedReplica(job, `recovery point "${job.recoveryPointArn}" is not an RDS ${kind.noun} ARN`)
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

    const snapshot = yield* kind.describe(sourceClients.rds, source.name)
    if (snapshot === undefined) return failedReplica(job, `source ${kind.noun} ${source.name} does not exist in account ${source.account}, ${source.region}`)
    if (snapshot.status !== "available") return failedReplica(job, `source ${kind.noun} ${source.name} is ${snapshot.status ?? "in an unknown state"}, not available`)
    const keyArn = yield* resolveDestinationKey(destination.kms, plan.kmsKeyId, where)
    if (crossAccount && snapshot.encrypted === true && snapshot.kmsKeyId !== undefined) {
      const awsManaged = yield* isAwsManagedKey(sourceClients.kms, snapshot.kmsKeyId)
      if (awsManaged) {
        return failedReplica(
          job,
          `source ${kind.noun} ${source.name} is encrypted with the default key aws/rds, which can't be shared with account ${plan.destinationAccount}; ` +
            `fix: copy it (or back the ${kind.sourceNoun} up) with a customer managed key whose key policy lets account ${plan.destinationAccount} use it`
        )
      }
    }
    const staging = crossAccount && crossRegion
    if (staging && plan.stagingKmsKeyId === undefined) {
      return failedReplica(
        job,
        `rule "${plan.rule}" copies a ${kind.noun} to another account and region: it needs stagingKmsKeyId, a key of account ${plan.destinationAccount} in ${source.region}, for the intermediate copy`
      )
    }

    const now = yield* Clock.currentTimeMillis
    const tags = replicaTags({
      sourceArn: job.recoveryPointArn,
      sourceResourceArn: job.resourceArn,
      sourceAccount: source.account,
      rule: plan.rule,
      createdAt: new Date(now),
      sourceCreatedAt: snapshot.takenAt,
      name: `DR replica of ${source.name}`
    })
    const replicaName = dbSnapshotIdentifier("dr", source.name)
    const copy = Effect.gen(function* () {
      const earlier = yield* kind.describe(destination.rds, replicaName)
      if (earlier !== undefined && tagValue(earlier.tags, MANAGED_BY_TAG) === SHARER) {
        yield* Effect.logInfo(`reusing the earlier copy ${replicaName}`)
        return yield* waitForRdsSnapshot(kind, destination.rds, replicaName)
      }
      if (crossAccount) yield* shareRdsSnapshot(kind, sourceClients.rds, source.name, plan.destinationAccount)
      let copyFrom = job.recoveryPointArn
      if (staging) {
        const atSource: RegionClients = yield* access.clients({ region: source.region, ...role })
        const stagingKey = yield* resolveDestinationKey(atSource.kms, plan.stagingKmsKeyId ?? "", `account ${plan.destinationAccount}, ${source.region}`)
        const stagingName = dbSnapshotIdentifier("dr-staging", source.name)
        yield* Effect.acquireRelease(kind.copy(atSource.rds, { from: job.recoveryPointArn, to: stagingName, kmsKeyId: stagingKey, tags }), () =>
          kind
            .delete(atSource.rds, stagingName)
            .pipe(
              Effect.catchTag("AwsError", (error) =>
                error.kind === "not-found" ? Effect.void : Effect.logError(`could not delete the intermediate copy ${stagingName}: ${error.message}`)
              )
            )
        )
        yield* waitForRdsSnapshot(kind, atSource.rds, stagingName)
        copyFrom = rdsSnapshotArn(kind, { ...source, account: plan.destinationAccount }, stagingName)
      }
      yield* kind.copy(destination.rds, { from: copyFrom, to: replicaName, kmsKeyId: keyArn, tags })
      yield* Effect.logInfo(`copying ${source.name} to ${replicaName} in ${where}`)
      return yield* waitForRdsSnapshot(kind, destination.rds, replicaName)
    })
    const replica = yield* slots.withSlot(destinationKey(plan.destinationAccount, plan.destinationRegion), plan.maxConcurrentCopies, Effect.scoped(copy))
    if (replica.encrypted !== true || replica.kmsKeyId !== keyArn) {
      return failedReplica(job, `copy ${replicaName} is on key ${replica.kmsKeyId ?? "none"}, not the destination's ${keyArn}; it was kept for inspection`)
    }
    const destinationArea = { partition: source.partition, region: plan.destinationRegion, account: plan.destinationAccount }
    const pruned = yield* pruneRdsReplicas(kind, destination.rds, {
      sourceId: new RegExp(`:${kind.sourceArnType}:([^:]+)$`).exec(job.resourceArn)?.[1] ?? snapshot.sourceId,
      sourceResourceArn: job.resourceArn,
      keepIdentifier: replicaName,
      retentionDays: plan.retentionDays
    })
    const age = yield* ageSince(snapshot.createdAt)
    const result: StepResult<ReplicaDetail> = succeeded({
      ...replicaBase(job),
      status: "replicated",
      replicaArn: rdsSnapshotArn(kind, destinationArea, replicaName),
      kmsKeyId: keyArn,
      ...(age === undefined ? {} : { replicaAgeSeconds: age }),
      prunedReplicaArns: pruned.map((name) => rdsSnapshotArn(kind, destinationArea, name))
    })
    return result
  }).pipe(replicaOutcomeOf(job))

/** Copies an RDS DB instance snapshot to the rule's destination (see replicateRdsSnapshot). */
export const replicateDbSnapshot = (job: ReplicaJob) => replicateRdsSnapshot(DB_SNAPSHOTS, job)
