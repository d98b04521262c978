import { DescribeSnapshotsCommand } from "@aws-sdk/client-ec2"
import { DescribeDBClusterSnapshotsCommand, DescribeDBSnapshotsCommand } from "@aws-sdk/client-rds"
import { Clock, Duration, Effect, Option } from "effect"
import { AccountAccess, awsCall, AwsConfig, listVaultRecoveryPoints, ProtectedResources, type RegionClients } from "@backup-actions/aws"
import { PolicySource, needsTags, replicaPlanFor, type Policy, type RecoveryPointFacts, type ReplicaPlan } from "@backup-actions/config"
import { Ledger } from "@backup-actions/ledger"
import { replicaAction, type ReplicaJob } from "./job"
import { replicateUnderStep } from "./replica-step"
import { CopySlots, destinationKey } from "./slots"
import { MANAGED_BY_TAG, SHARER, tagValue } from "./tags"

/**
 * The tag AWS Backup puts on every recovery point of the project's plans (the plans'
 * RecoveryPointTags): the catch-up only ever looks at those, never at anyone else's snapshots.
 */
export const PROJECT_TAG = "backup-actions:managed"
export const PROJECT_TAG_VALUE = "true"

/** A source recovery point found by listing, with what the policy needs to know of it. */
export interface CatchUpSource {
  readonly recoveryPointArn: string
  readonly resourceArn: string
  readonly resourceType: "EBS" | "RDS" | "Aurora"
  readonly sourceAccount: string
}

/** How one catch-up run ended, per source. */
export interface CatchUpSummary {
  /** Sources listed: the project's, in the window. */
  readonly listed: number
  /** Already replicated (their step had succeeded): left alone. */
  readonly alreadyReplicated: number
  /** Their rule can only be decided by the vault, and AWS Backup could not say which vault holds them. */
  readonly undecided: number
  /** No replicate rule selects them. */
  readonly notSelected: number
  readonly replicated: number
  readonly failed: number
  /** Another worker held the step (the event path is on it). */
  readonly busy: number
  /** The step could not be run or announced (an AWS error on the ledger or the bus); the next run tries again. */
  readonly errors: number
}

const partitionOf = (region: string): string => (region.startsWith("cn-") ? "aws-cn" : region.startsWith("us-gov-") ? "aws-us-gov" : "aws")

const isProjects = (tags: ReadonlyArray<{ readonly Key?: string | undefined; readonly Value?: string | undefined }> | undefined): boolean =>
  tagValue(tags, PROJECT_TAG) === PROJECT_TAG_VALUE && tagValue(tags, MANAGED_BY_TAG) !== SHARER

/** The project's completed EBS snapshots in the client's region taken since `sinceMs`, every page. */
export const listEbsSources = (clients: RegionClients, sinceMs: number) =>
  Effect.gen(function* () {
    const partition = partitionOf(clients.region)
    const found: Array<CatchUpSource> = []
    let nextToken: string | undefined
    do {
      const page = yield* awsCall("ec2:DescribeSnapshots", (abortSignal) =>
        clients.ec2.send(
          new DescribeSnapshotsCommand({
            OwnerIds: ["self"],
            Filters: [
              { Name: `tag:${PROJECT_TAG}`, Values: [PROJECT_TAG_VALUE] },
              { Name: "status", Values: ["completed"] }
            ],
            MaxResults: 1000,
            NextToken: nextToken
          }),
          { abortSignal }
        )
      )
      for (const snapshot of page.Snapshots ?? []) {
        const takenAt = snapshot.StartTime?.getTime() ?? 0
        if (snapshot.SnapshotId === undefined || snapshot.VolumeId === undefined || !isProjects(snapshot.Tags) || takenAt < sinceMs) continue
        const account = snapshot.OwnerId ?? ""
        found.push({
          recoveryPointArn: `arn:${partition}:ec2:${clients.region}::snapshot/${snapshot.SnapshotId}`,
          resourceArn: `arn:${partition}:ec2:${clients.region}:${account}:volume/${snapshot.VolumeId}`,
          resourceType: "EBS",
          sourceAccount: account
        })
      }
      nextToken = page.NextToken
    } while (nextToken !== undefined && nextToken !== "")
    return found
  })

/** One listed DB or DB cluster snapshot, as the catch-up reads it. */
interface ListedDbSnapshot {
  readonly arn: string | undefined
  /** The DB instance or DB cluster it was taken of. */
  readonly sourceId: string | undefined
  readonly status: string | undefined
  readonly takenAt: Date | undefined
  readonly tags: ReadonlyArray<{ readonly Key?: string | undefined; readonly Value?: string | undefined }> | undefined
}

/** One page of the region's DB snapshots (RDS) or DB cluster snapshots (Aurora) of one snapshot type. */
const dbSnapshotPage = (clients: RegionClients, resourceType: "RDS" | "Aurora", snapshotType: string, marker: string | undefined) =>
  resourceType === "RDS"
    ? awsCall("rds:DescribeDBSnapshots", (abortSignal) =>
        clients.rds.send(new DescribeDBSnapshotsCommand({ SnapshotType: snapshotType, MaxRecords: 100, Marker: marker }), { abortSignal })
      ).pipe(
        Effect.map((page) => ({
          next: page.Marker,
          snapshots: (page.DBSnapshots ?? []).map(
            (snapshot): ListedDbSnapshot => ({
              arn: snapshot.DBSnapshotArn,
              sourceId: snapshot.DBInstanceIdentifier,
              status: snapshot.Status,
              takenAt: snapshot.OriginalSnapshotCreateTime ?? snapshot.SnapshotCreateTime,
              tags: snapshot.TagList
            })
          )
        }))
      )
    : awsCall("rds:DescribeDBClusterSnapshots", (abortSignal) =>
        clients.rds.send(new DescribeDBClusterSnapshotsCommand({ SnapshotType: snapshotType, MaxRecords: 100, Marker: marker }), { abortSignal })
      ).pipe(
        Effect.map((page) => ({
          next: page.Marker,
          snapshots: (page.DBClusterSnapshots ?? []).map(
            (snapshot): ListedDbSnapshot => ({
              arn: snapshot.DBClusterSnapshotArn,
              sourceId: snapshot.DBClusterIdentifier,
              status: snapshot.Status,
              takenAt: snapshot.SnapshotCreateTime,
              tags: snapshot.TagList
            })
          )
        }))
      )

/**
 * The project's available DB instance snapshots (as resource type RDS) and Aurora DB cluster
 * snapshots (as Aurora) in the client's region taken since `sinceMs`: those AWS Backup made
 * (type awsbackup) and manual ones, every page. Neither listing has a tag filter, so the tags
 * are read from each snapshot's TagList. `resourceTypes` says which to list: those a replicate
 * rule selects (DB instance snapshots unless told otherwise).
 */
export const listDbSources = (clients: RegionClients, sinceMs: number, resourceTypes: ReadonlyArray<"RDS" | "Aurora"> = ["RDS"]) =>
  Effect.gen(function* () {
    const partition = partitionOf(clients.region)
    const found: Array<CatchUpSource> = []
    for (const resourceType of resourceTypes) {
      for (const snapshotType of ["awsbackup", "manual"]) {
        let marker: string | undefined
        do {
          const page = yield* dbSnapshotPage(clients, resourceType, snapshotType, marker)
          for (const snapshot of page.snapshots) {
            const takenAt = snapshot.takenAt?.getTime() ?? 0
            const account = /^arn:[^:]+:rds:[^:]+:(\d{12}):/.exec(snapshot.arn ?? "")?.[1]
            if (
              snapshot.arn === undefined ||
              account === undefined ||
              snapshot.sourceId === undefined ||
              snapshot.status !== "available" ||
              !isProjects(snapshot.tags) ||
              takenAt < sinceMs
            ) {
              continue
            }
            found.push({
              recoveryPointArn: snapshot.arn,
              resourceArn: `arn:${partition}:rds:${clients.region}:${account}:${resourceType === "RDS" ? "db" : "cluster"}:${snapshot.sourceId}`,
              resourceType,
              sourceAccount: account
            })
          }
          marker = page.next
        } while (marker !== undefined && marker !== "")
      }
    }
    return found
  })

/** The vaults that replicate rules are limited to: only then does a source's vault matter. */
export const vaultsNamedByReplicateRules = (policy: Policy): ReadonlyArray<string> => [
  ...new Set(policy.rules.flatMap((rule) => (rule.replicate === undefined ? [] : (rule.match.vaults ?? []))))
]

/**
 * Which of the named vaults holds each recovery point created since `sinceMs`, from AWS Backup
 * (a listed snapshot does not name its vault), every page. None when AWS Backup cannot answer:
 * the sources whose rule depends on the vault are then left to their events.
 */
export const vaultsOfRecoveryPoints = (vaults: ReadonlyArray<string>, sinceMs: number) =>
  Effect.gen(function* () {
    const vaultOf: Map<string, string> = new Map()
    for (const vault of vaults) {
      for (const point of yield* listVaultRecoveryPoints(vault, { createdAfter: new Date(sinceMs) })) {
        if (point.RecoveryPointArn !== undefined && !vaultOf.has(point.RecoveryPointArn)) vaultOf.set(point.RecoveryPointArn, vault)
      }
    }
    return Option.some<ReadonlyMap<string, string>>(vaultOf)
  }).pipe(
    Effect.catchTag("AwsError", (error) =>
      Effect.logWarning(`catch-up: AWS Backup could not list the vaults' recovery points (${error.operation}: ${error.code}: ${error.message}); sources whose rule depends on the vault are left to their events`).pipe(
        Effect.as(Option.none<ReadonlyMap<string, string>>())
      )
    )
  )

/**
 * The plan for a listed source, as the event path would find it. With the vault known (from
 * AWS Backup; a source in none of the listed vaults is in none that a rule names), the rules
 * decide exactly. Without it, when the first rule that matches otherwise also names vaults, the
 * answer depends on the vault: such a source is left to its event rather than sent where another
 * rule would send it.
 */
export const catchUpPlanFor = (
  policy: Policy,
  facts: Omit<RecoveryPointFacts, "vaultName">,
  vaultName: Option.Option<string> = Option.none()
): ReplicaPlan | "depends-on-vault" | undefined => {
  if (Option.isSome(vaultName)) return replicaPlanFor(policy, { ...facts, vaultName: vaultName.value })
  for (const rule of policy.rules) {
    if (rule.replicate === undefined) continue
    // Taking the rule's own first vault as the recovery point's asks whether everything but the vault matches.
    const plan = replicaPlanFor({ rules: [rule] }, { ...facts, vaultName: rule.match.vaults?.[0] ?? "" })
    if (plan === undefined) continue
    return rule.match.vaults === undefined ? plan : "depends-on-vault"
  }
  return undefined
}

type Outcome = keyof Omit<CatchUpSummary, "listed">

/**
 * The scheduled catch-up: lists the project's EBS, DB and DB cluster snapshots of the window in the sharer's
 * own account and region, and runs every one that a replicate rule selects and whose step has
 * not succeeded through the same ledger step as its event would. The copies of each destination
 * run at most `maxConcurrentCopies` at a time (and CopySlots keeps the bound together with the
 * event path); one source's failure never stops the others.
 */
export const catchUpReplicas = (options: { readonly lookBackDays: number }) =>
  Effect.gen(function* () {
    const policy = yield* PolicySource
    const settings = yield* AwsConfig
    const access = yield* AccountAccess
    const resources = yield* ProtectedResources
    const ledger = yield* Ledger
    yield* CopySlots
    const now = yield* Clock.currentTimeMillis
    const sinceMs = now - Duration.toMillis(Duration.days(options.lookBackDays))
    const clients = yield* access.clients({ region: settings.region })
    const wants = (resourceType: string) =>
      policy.rules.some((rule) => rule.replicate !== undefined && (rule.match.resourceTypes === undefined || rule.match.resourceTypes.includes(resourceType)))
    const dbTypes = (["RDS", "Aurora"] as const).filter(wants)
    const sources = [...(wants("EBS") ? yield* listEbsSources(clients, sinceMs) : []), ...(dbTypes.length > 0 ? yield* listDbSources(clients, sinceMs, dbTypes) : [])]

    const namedVaults = vaultsNamedByReplicateRules(policy)
    const vaultOf = namedVaults.length === 0 || sources.length === 0 ? Option.none() : yield* vaultsOfRecoveryPoints(namedVaults, sinceMs)

    const counts: Record<Outcome, number> = { alreadyReplicated: 0, undecided: 0, notSelected: 0, replicated: 0, failed: 0, busy: 0, errors: 0 }
    const tagsOfResource = new Map<string, Readonly<Record<string, string>>>()
    const groups = new Map<string, { readonly limit: number; readonly jobs: Array<ReplicaJob> }>()
    for (const source of sources) {
      // In none of the named vaults: no vault-limited rule can take it, whichever vault it is in.
      const vaultName = Option.map(vaultOf, (vaults) => vaults.get(source.recoveryPointArn) ?? "")
      let tags: Readonly<Record<string, string>> | undefined
      if (needsTags(policy, "replicate", { resourceType: source.resourceType, resourceArn: source.resourceArn, vaultName: Option.getOrUndefined(vaultName) })) {
        tags = tagsOfResource.get(source.resourceArn) ?? (yield* resources.tagsOf(source.resourceArn))
        tagsOfResource.set(source.resourceArn, tags)
      }
      const plan = catchUpPlanFor(policy, { resourceType: source.resourceType, resourceArn: source.resourceArn, ...(tags === undefined ? {} : { tags }) }, vaultName)
      if (plan === undefined) {
        counts.notSelected += 1
        continue
      }
      if (plan === "depends-on-vault") {
        counts.undecided += 1
        continue
      }
      const key = destinationKey(plan.destinationAccount, plan.destinationRegion)
      const group = groups.get(key) ?? { limit: plan.maxConcurrentCopies, jobs: [] }
      group.jobs.push({ ...source, sourceRegion: settings.region, plan })
      groups.set(key, group)
    }

    const runOne = (job: ReplicaJob) =>
      Effect.gen(function* () {
        const record = yield* ledger.get({ recoveryPointArn: job.recoveryPointArn, action: replicaAction(job.plan) })
        if (record?.status === "succeeded") return "alreadyReplicated" as const
        const result = yield* replicateUnderStep(job)
        if (Option.isNone(result)) return "alreadyReplicated" as const
        return result.value._tag === "Succeeded" ? ("replicated" as const) : ("failed" as const)
      }).pipe(
        Effect.catchTags({
          StepBusy: () => Effect.succeed("busy" as const),
          LeaseLost: (error) => Effect.logWarning(`catch-up lost the step of ${error.recoveryPointArn}`).pipe(Effect.as("errors" as const)),
          AwsError: (error) => Effect.logWarning(`catch-up of ${job.recoveryPointArn}: ${error.operation} failed: ${error.code}: ${error.message}`).pipe(Effect.as("errors" as const)),
          PublishFailed: (error) => Effect.logWarning(`catch-up of ${job.recoveryPointArn}: Replica Completed was refused: ${error.errorMessage}`).pipe(Effect.as("errors" as const)),
          EventDecodeError: (error) => Effect.logError(`catch-up of ${job.recoveryPointArn}: the outcome does not fit Replica Completed: ${error.message}`).pipe(Effect.as("errors" as const))
        }),
        Effect.tap((outcome) => Effect.sync(() => (counts[outcome] += 1)))
      )

    yield* Effect.forEach([...groups.values()], (group) => Effect.forEach(group.jobs, runOne, { concurrency: group.limit, discard: true }), {
      concurrency: "unbounded",
      discard: true
    })
    const summary: CatchUpSummary = { listed: sources.length, ...counts }
    yield* Effect.logInfo(
      `catch-up over ${options.lookBackDays} days: ${summary.listed} listed, ${summary.replicated} replicated, ${summary.failed} failed, ` +
        `${summary.alreadyReplicated} already replicated, ${summary.busy} busy elsewhere, ${summary.notSelected} not selected, ` +
        `${summary.undecided} left to their event (the rule depends on the vault), ${summary.errors} errors`
    )
    return summary
  }).pipe(Effect.scoped)
