import { CreateVolumeCommand, DescribeVolumesCommand, EC2Client, type EC2ClientConfig, type Snapshot } from "@aws-sdk/client-ec2"
import {
  CreateDBInstanceCommand,
  DescribeDBClustersCommand,
  DescribeDBInstancesCommand,
  RDSClient,
  RestoreDBClusterFromSnapshotCommand,
  RestoreDBInstanceFromDBSnapshotCommand,
  type RDSClientConfig
} from "@aws-sdk/client-rds"
import { AssumeRoleCommand, STSClient } from "@aws-sdk/client-sts"
import { Clock, Console, Duration, Effect, Either, Schedule, Schema } from "effect"
import {
  AwsConfig,
  AwsError,
  awsCall,
  clientOptions,
  sharerClusterSnapshotReplicas,
  sharerDbSnapshotReplicas,
  sharerSnapshotReplicas,
  tagValueIn,
  type AwsSettings,
  type TagList
} from "@backup-actions/aws"
import { CREATED_AT_TAG, MANAGED_BY_TAG, SHARER, SOURCE_ARN_TAG, SOURCE_CREATED_AT_TAG, SOURCE_RESOURCE_TAG } from "@backup-actions/contracts"
import { OperationFailed, UsageError } from "./errors"
import { Progress } from "./progress"

/**
 * The tags the sharer puts on its replicas (apps/sharer/src/tags.ts). The CLI reads them in the
 * DR account to find the replicas of a source; it never parses a replica's name.
 */
export const REPLICA_TAGS = {
  managedBy: MANAGED_BY_TAG,
  sharer: SHARER,
  sourceArn: SOURCE_ARN_TAG,
  sourceResource: SOURCE_RESOURCE_TAG,
  createdAt: CREATED_AT_TAG,
  sourceCreatedAt: SOURCE_CREATED_AT_TAG
} as const

/** What a failover was asked to bring back: a protected resource (its newest replica) or one recovery point. */
export interface FailoverSource {
  readonly arn: string
  /** RDS: a DB instance and its DB snapshots; Aurora: a DB cluster and its cluster snapshots. */
  readonly kind: "RDS" | "Aurora" | "EBS"
  /** A protected resource's replicas carry its ARN in source-resource; a recovery point's in source-arn. */
  readonly matchTag: string
  /** The DB instance or DB cluster of a resource ARN: narrows the listing of (cluster) snapshots, which can't be filtered by tag. */
  readonly resourceId: string | undefined
}

export interface FailoverCommand {
  readonly _tag: "Failover"
  readonly source: FailoverSource
  /** The new DB instance's class; for Aurora, the class of the cluster's writer. */
  readonly instanceClass: string
  /** The new DB instance's identifier; for Aurora, the new cluster's (its writer is `<id>-writer`). */
  readonly newInstanceId: string | undefined
  /** RDS and Aurora: the pilot-light network, when it is not the DR region's default VPC. */
  readonly dbSubnetGroup: string | undefined
  readonly securityGroupIds: ReadonlyArray<string>
  /** The DR region; the stack's region when not given. */
  readonly region: string | undefined
  /** EBS: where the new volume goes. */
  readonly zone: string | undefined
  readonly roleArn: string | undefined
  readonly externalId: string | undefined
  readonly json: boolean
}

export const FAILOVER_HELP_TEXT = `Usage: backup-actions failover --source <arn> [--region <DR region>] [--instance-class <class>]
                            [--new-instance-id <id>] [--db-subnet-group <name>]
                            [--security-group-ids <sg-id,...>] [--zone <availability zone>]
                            [--role-arn <DR role> --external-id <id>] [--json]

Pilot-light failover: finds the newest DR replica of the source that the sharer made (by its
tags: backup-actions:managed-by=sharer and backup-actions:source-resource, or source-arn for one
recovery point) in the DR account and region, and brings it up there:

  an RDS DB instance (arn:...:rds:...:db:<id>) or DB snapshot (arn:...:rds:...:snapshot:<id>):
      RestoreDBInstanceFromDBSnapshot into a new DB instance, then waits until it is available
  an Aurora DB cluster (arn:...:rds:...:cluster:<id>) or cluster snapshot (...:cluster-snapshot:<id>):
      RestoreDBClusterFromSnapshot into a new cluster, waits until it is available, then
      CreateDBInstance of one writer instance in it (<cluster id>-writer) and waits for that too
  an EBS volume (arn:...:ec2:...:volume/<id>) or snapshot (arn:...:ec2:...::snapshot/<id>):
      CreateVolume from the replica in --zone, then waits until it is available

Prints what it made, the endpoint (a cluster's writer endpoint), and the recovery point objective achieved: the replica's age
(now minus the time its source snapshot was taken). Exit code 1 when there is no replica.

  --source <arn>             the protected DB instance, Aurora cluster or volume, or one of its snapshots
  --region <region>          the DR region (default: the stack's region)
  --instance-class <class>   the new DB instance's class (default db.t4g.micro; for Aurora the
                             writer's, default db.t4g.medium, the smallest class Aurora runs)
  --new-instance-id <id>     the new DB instance's identifier, or the new Aurora cluster's
                             (default failover-<source>-<time>)
  --db-subnet-group <name>   RDS, Aurora: the new instance's or cluster's DB subnet group (default: the default VPC's)
  --security-group-ids <ids> RDS, Aurora: its VPC security groups, comma-separated (default: the VPC's default)
  --zone <zone>              EBS: the availability zone of the new volume (required)
  --role-arn <arn>           a role in the DR account to assume (else the caller's own account)
  --external-id <id>         the external id the role's trust policy requires
  --json                     one JSON object on stdout instead of text`

/** Reads a source ARN: which kind of resource, and which tag its replicas carry it in. */
export const parseFailoverSource = (arn: string): Either.Either<FailoverSource, string> => {
  const db = /^arn:[^:]+:rds:[a-z0-9-]+:\d{12}:db:([A-Za-z][A-Za-z0-9-]*)$/.exec(arn)
  if (db !== null) return Either.right({ arn, kind: "RDS", matchTag: REPLICA_TAGS.sourceResource, resourceId: db[1] })
  if (/^arn:[^:]+:rds:[a-z0-9-]+:\d{12}:snapshot:.+$/.test(arn)) return Either.right({ arn, kind: "RDS", matchTag: REPLICA_TAGS.sourceArn, resourceId: undefined })
  const cluster = /^arn:[^:]+:rds:[a-z0-9-]+:\d{12}:cluster:([A-Za-z][A-Za-z0-9-]*)$/.exec(arn)
  if (cluster !== null) return Either.right({ arn, kind: "Aurora", matchTag: REPLICA_TAGS.sourceResource, resourceId: cluster[1] })
  if (/^arn:[^:]+:rds:[a-z0-9-]+:\d{12}:cluster-snapshot:.+$/.test(arn)) return Either.right({ arn, kind: "Aurora", matchTag: REPLICA_TAGS.sourceArn, resourceId: undefined })
  if (/^arn:[^:]+:ec2:[a-z0-9-]+:\d{12}:volume\/vol-[0-9a-f]+$/.test(arn)) {
    return Either.right({ arn, kind: "EBS", matchTag: REPLICA_TAGS.sourceResource, resourceId: undefined })
  }
  if (/^arn:[^:]+:ec2:[a-z0-9-]+:\d*:snapshot\/snap-[0-9a-f]+$/.test(arn)) return Either.right({ arn, kind: "EBS", matchTag: REPLICA_TAGS.sourceArn, resourceId: undefined })
  return Either.left(
    `--source "${arn}" is neither a DB instance or DB snapshot ARN (arn:aws:rds:<region>:<account>:db:<id>, ...:snapshot:<id>), an Aurora DB cluster or cluster snapshot ARN (...:cluster:<id>, ...:cluster-snapshot:<id>), nor an EBS volume or snapshot ARN`
  )
}

/** What names the writer instance of a restored cluster after the cluster. */
const WRITER_SUFFIX = "-writer"

/** The parsed options of `failover`, checked together. */
export const failoverCommandOf = (values: {
  readonly source?: string | undefined
  readonly region?: string | undefined
  readonly "instance-class"?: string | undefined
  readonly "new-instance-id"?: string | undefined
  readonly "db-subnet-group"?: string | undefined
  readonly "security-group-ids"?: string | undefined
  readonly zone?: string | undefined
  readonly "role-arn"?: string | undefined
  readonly "external-id"?: string | undefined
  readonly json?: boolean | undefined
}): Either.Either<FailoverCommand, UsageError> =>
  Either.gen(function* () {
    const usage = (message: string) => Either.left(new UsageError({ message, command: "failover" }))
    if (values.source === undefined) return yield* usage("--source <arn of the protected DB instance, Aurora cluster, volume or one of their snapshots> is required")
    const source = yield* Either.mapLeft(parseFailoverSource(values.source), (message) => new UsageError({ message, command: "failover" }))
    if (source.kind === "EBS" && values.zone === undefined) return yield* usage("an EBS source needs --zone <availability zone> for the new volume")
    if (values["external-id"] !== undefined && values["role-arn"] === undefined) return yield* usage("--external-id is only used with --role-arn")
    if (values["role-arn"] !== undefined && !/^arn:[^:]+:iam::\d{12}:role\/.+$/.test(values["role-arn"])) {
      return yield* usage(`--role-arn "${values["role-arn"]}" is not an IAM role ARN`)
    }
    const newId = values["new-instance-id"]
    // A cluster's identifier leaves room for its writer's `-writer`.
    const longestId = source.kind === "Aurora" ? 63 - WRITER_SUFFIX.length : 63
    if (newId !== undefined && !new RegExp(`^[A-Za-z](?!.*--)[A-Za-z0-9-]{0,${longestId - 1}}$`).test(newId)) {
      return yield* usage(
        `--new-instance-id "${newId}" is not a ${source.kind === "Aurora" ? "DB cluster" : "DB instance"} identifier (a letter, then letters, digits and single hyphens, at most ${longestId})`
      )
    }
    if (newId !== undefined && newId.endsWith("-")) return yield* usage(`--new-instance-id "${newId}" must not end with a hyphen`)
    const subnetGroup = values["db-subnet-group"]
    const groups = (values["security-group-ids"] ?? "").split(",").map((id) => id.trim()).filter((id) => id !== "")
    if (source.kind === "EBS" && (subnetGroup !== undefined || groups.length > 0)) {
      return yield* usage("--db-subnet-group and --security-group-ids are for a DB instance or cluster; a volume has no network of its own")
    }
    if (subnetGroup !== undefined && !/^[A-Za-z0-9 ._-]{1,255}$/.test(subnetGroup)) return yield* usage(`--db-subnet-group "${subnetGroup}" is not a DB subnet group name`)
    const badGroup = groups.find((id) => !/^sg-[0-9a-f]{8,17}$/.test(id))
    if (badGroup !== undefined) return yield* usage(`--security-group-ids: "${badGroup}" is not a security group id (sg-...)`)
    const command: FailoverCommand = {
      _tag: "Failover",
      source,
      instanceClass: values["instance-class"] ?? (source.kind === "Aurora" ? "db.t4g.medium" : "db.t4g.micro"),
      newInstanceId: newId,
      dbSubnetGroup: subnetGroup,
      securityGroupIds: groups,
      region: values.region,
      zone: values.zone,
      roleArn: values["role-arn"],
      externalId: values["external-id"],
      json: values.json === true
    }
    return command
  })

/** The restored resource is not ready yet; the waiter asks again later. */
class NotReadyYet extends Schema.TaggedError<NotReadyYet>()("NotReadyYet", { status: Schema.String }) {}

/**
 * How the new resource is waited for: 5 s, growing by half, jittered, at most a minute apart,
 * for at most three hours (a large DB instance takes tens of minutes in AWS; the emulator none).
 */
export const readySchedule = Schedule.exponential(Duration.seconds(5), 1.5).pipe(
  Schedule.jittered,
  Schedule.modifyDelay((delay) => Duration.min(delay, Duration.minutes(1))),
  Schedule.upTo(Duration.hours(3))
)

/** Clients in the DR region: the caller's own account, or the DR account through the role (credentials renewed before they expire). */
const drClients = (settings: AwsSettings, region: string, roleArn: string | undefined, externalId: string | undefined) =>
  Effect.gen(function* () {
    const base = clientOptions({ ...settings, region })
    if (roleArn === undefined) return yield* regionClients(base)
    {
      const sts = yield* Effect.acquireRelease(
        Effect.sync(() => new STSClient(clientOptions(settings))),
        (client) => Effect.sync(() => client.destroy())
      )
      const assume = awsCall("sts:AssumeRole", (abortSignal) =>
        sts.send(new AssumeRoleCommand({ RoleArn: roleArn, RoleSessionName: "backup-actions-failover", ExternalId: externalId, DurationSeconds: 3600 }), { abortSignal })
      ).pipe(
        Effect.flatMap((answer) => {
          const credentials = answer.Credentials
          return credentials?.AccessKeyId === undefined || credentials.SecretAccessKey === undefined
            ? Effect.fail(new AwsError({ operation: "sts:AssumeRole", code: "MissingCredentials", message: `no credentials for ${roleArn}`, kind: "client" }))
            : Effect.succeed({
                accessKeyId: credentials.AccessKeyId,
                secretAccessKey: credentials.SecretAccessKey,
                ...(credentials.SessionToken === undefined ? {} : { sessionToken: credentials.SessionToken }),
                ...(credentials.Expiration === undefined ? {} : { expiration: credentials.Expiration })
              })
        })
      )
      // Fails here, with the role's own error, rather than on the first EC2 or RDS call.
      yield* assume
      return yield* regionClients({ ...base, credentials: () => Effect.runPromise(assume) })
    }
  })

const regionClients = (options: EC2ClientConfig & RDSClientConfig) =>
  Effect.acquireRelease(
    Effect.sync(() => ({ ec2: new EC2Client(options), rds: new RDSClient(options) })),
    (clients) =>
      Effect.sync(() => {
        clients.ec2.destroy()
        clients.rds.destroy()
      })
  )

const timeOf = (text: string | undefined): number | undefined => {
  const millis = Date.parse(text ?? "")
  return Number.isFinite(millis) ? millis : undefined
}

/** A replica found in the DR region, with the times that order replicas and give the RPO. */
interface FoundReplica {
  readonly id: string
  readonly arn: string
  /** When its source was taken, when known; else undefined. */
  readonly sourceTakenAt: number | undefined
  readonly createdAt: number | undefined
  /** RDS and Aurora: the engine, which a cluster restore has to name. */
  readonly engine: string | undefined
}

/** Newest first: by the time the source was taken, then by when the replica was made. */
const newestFirst = (left: FoundReplica, right: FoundReplica): number =>
  (right.sourceTakenAt ?? right.createdAt ?? 0) - (left.sourceTakenAt ?? left.createdAt ?? 0) || (right.createdAt ?? 0) - (left.createdAt ?? 0)

/** What a DB snapshot and a DB cluster snapshot replica have in common, for choosing among them. */
interface RdsSnapshotReplica {
  readonly id: string | undefined
  readonly arn: string | undefined
  readonly status: string | undefined
  readonly engine: string | undefined
  readonly tags: TagList
  /** A DB snapshot copy keeps its source's creation time; a cluster snapshot copy does not. */
  readonly originalCreateTime: Date | undefined
}

/** The available ones of the sharer's RDS replicas, newest first. */
const usableRdsReplicas = (snapshots: ReadonlyArray<RdsSnapshotReplica>): ReadonlyArray<FoundReplica> =>
  snapshots
    .flatMap((snapshot) =>
      snapshot.status !== "available" || snapshot.id === undefined
        ? []
        : [
            {
              id: snapshot.id,
              arn: snapshot.arn ?? snapshot.id,
              sourceTakenAt: timeOf(tagValueIn(snapshot.tags, REPLICA_TAGS.sourceCreatedAt)) ?? snapshot.originalCreateTime?.getTime(),
              createdAt: timeOf(tagValueIn(snapshot.tags, REPLICA_TAGS.createdAt)),
              engine: snapshot.engine
            }
          ]
    )
    .sort(newestFirst)

/** The sharer's DB snapshot replicas, or for Aurora its DB cluster snapshot replicas, available ones newest first. */
const rdsReplicas = (rds: RDSClient, source: FailoverSource) => {
  const selector = { tag: source.matchTag, value: source.arn }
  const listed: Effect.Effect<ReadonlyArray<RdsSnapshotReplica>, AwsError> =
    source.kind === "Aurora"
      ? Effect.map(sharerClusterSnapshotReplicas(rds, { ...selector, clusterId: source.resourceId }), (snapshots) =>
          snapshots.map((snapshot) => ({ id: snapshot.DBClusterSnapshotIdentifier, arn: snapshot.DBClusterSnapshotArn, status: snapshot.Status, engine: snapshot.Engine, tags: snapshot.TagList, originalCreateTime: undefined }))
        )
      : Effect.map(sharerDbSnapshotReplicas(rds, { ...selector, instanceId: source.resourceId }), (snapshots) =>
          snapshots.map((snapshot) => ({ id: snapshot.DBSnapshotIdentifier, arn: snapshot.DBSnapshotArn, status: snapshot.Status, engine: snapshot.Engine, tags: snapshot.TagList, originalCreateTime: snapshot.OriginalSnapshotCreateTime }))
        )
  return Effect.map(listed, usableRdsReplicas)
}

const ebsReplicas = (ec2: EC2Client, source: FailoverSource, region: string) =>
  sharerSnapshotReplicas(ec2, { tag: source.matchTag, value: source.arn, completedOnly: true }).pipe(
    Effect.map((snapshots) =>
      snapshots.flatMap((snapshot) => (snapshot.SnapshotId === undefined ? [] : [ebsReplicaOf(snapshot, snapshot.SnapshotId, region)])).sort(newestFirst)
    )
  )

const ebsReplicaOf = (snapshot: Snapshot, id: string, region: string): FoundReplica => ({
  id,
  arn: `arn:aws:ec2:${region}::snapshot/${id}`,
  sourceTakenAt: timeOf(tagValueIn(snapshot.Tags, REPLICA_TAGS.sourceCreatedAt)),
  createdAt: timeOf(tagValueIn(snapshot.Tags, REPLICA_TAGS.createdAt)) ?? snapshot.StartTime?.getTime(),
  engine: undefined
})

/** Where each kind of source's replicas are looked for, as the refusal names it. */
const REPLICA_NOUNS: Record<FailoverSource["kind"], string> = {
  RDS: "available DB snapshot",
  Aurora: "available DB cluster snapshot",
  EBS: "completed snapshot"
}

/** Tags on what a failover makes: where it came from. Not the project's managed tag, so no sweeper ever deletes it. */
const failoverTags = (source: FailoverSource, replica: FoundReplica, nowMs: number) => [
  { Key: "backup-actions:failover-of", Value: source.arn },
  { Key: "backup-actions:restored-from", Value: replica.arn },
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
  const longest = source.kind === "Aurora" ? 63 - WRITER_SUFFIX.length : 63
  const base = `failover-${name}`.replace(/[^A-Za-z0-9]+/g, "-").slice(0, longest - stamp.length - 1).replace(/-+$/, "")
  return `${base}-${stamp}`
}

/** `1h 02m 03s` */
export const describeAge = (seconds: number): string => {
  const hours = Math.floor(seconds / 3600)
  const minutes = Math.floor((seconds % 3600) / 60)
  const rest = seconds % 60
  return hours > 0 ? `${hours}h ${String(minutes).padStart(2, "0")}m ${String(rest).padStart(2, "0")}s` : `${minutes}m ${String(rest).padStart(2, "0")}s`
}

/** Asks again on the schedule until `check` stops failing with NotReadyYet; each answer shows as progress. */
const waitUntilReady = <A, E, R>(what: string, check: Effect.Effect<A, NotReadyYet | E, R>) =>
  Effect.gen(function* () {
    const progress = yield* Progress
    const started = yield* Clock.currentTimeMillis
    return yield* check.pipe(
      Effect.tapError((error) =>
        error instanceof NotReadyYet && progress.enabled
          ? Effect.flatMap(Clock.currentTimeMillis, (now) => Console.error(`${what}: ${error.status} after ${describeAge(Math.round((now - started) / 1000))}`))
          : Effect.void
      ),
      Effect.retry({ schedule: readySchedule, while: (error) => error instanceof NotReadyYet }),
      Effect.catchIf(
        (error): error is NotReadyYet => error instanceof NotReadyYet,
        (error) => new OperationFailed({ message: `${what} is still ${error.status} after 3 hours; it was left as it is` })
      )
    )
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

/** What a failover made, as printed. */
export interface FailoverResult {
  readonly source: string
  readonly region: string
  readonly replica: { readonly id: string; readonly arn: string; readonly sourceTakenAt: string | undefined; readonly createdAt: string | undefined }
  readonly restored: {
    readonly kind: "db-instance" | "db-cluster" | "volume"
    /** The DB instance, DB cluster or volume. */
    readonly id: string
    /** A cluster's writer DB instance. */
    readonly instanceId?: string
    readonly status: string
    /** host:port; a cluster's writer endpoint. */
    readonly endpoint?: string
    readonly availabilityZone?: string
  }
  /** Seconds from the source's snapshot (or, when that time is unknown, the replica's creation) to now. */
  readonly rpoSeconds: number
  readonly rpoFrom: "source snapshot" | "replica creation"
}

const RESTORED_NOUNS: Record<FailoverResult["restored"]["kind"], string> = { "db-instance": "DB instance", "db-cluster": "DB cluster", volume: "volume" }

/** Waits until a DB instance or cluster is available; `doing` says, in the refusal, what it was in the middle of. */
const rdsAvailable = <A>(what: string, doing: string, describe: Effect.Effect<{ readonly status: string | undefined; readonly found: A | undefined }, AwsError>) =>
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

const dbInstanceAvailable = (rds: RDSClient, instanceId: string, doing: string) =>
  rdsAvailable(
    `DB instance ${instanceId}`,
    doing,
    awsCall("rds:DescribeDBInstances", (abortSignal) => rds.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: instanceId }), { abortSignal })).pipe(
      Effect.map((answer) => ({ status: answer.DBInstances?.[0]?.DBInstanceStatus, found: answer.DBInstances?.[0] }))
    )
  )

/** The RDS network options, as both restores and CreateDBInstance name them. */
const networkOf = (command: FailoverCommand) => ({
  ...(command.dbSubnetGroup === undefined ? {} : { DBSubnetGroupName: command.dbSubnetGroup }),
  ...(command.securityGroupIds.length === 0 ? {} : { VpcSecurityGroupIds: [...command.securityGroupIds] })
})

const restoreDbInstance = (rds: RDSClient, command: FailoverCommand, replica: FoundReplica, nowMs: number) =>
  Effect.gen(function* () {
    const instanceId = command.newInstanceId ?? defaultInstanceId(command.source, nowMs)
    yield* awsCall("rds:RestoreDBInstanceFromDBSnapshot", (abortSignal) =>
      rds.send(
        new RestoreDBInstanceFromDBSnapshotCommand({
          DBInstanceIdentifier: instanceId,
          DBSnapshotIdentifier: replica.id,
          DBInstanceClass: command.instanceClass,
          ...networkOf(command),
          Tags: failoverTags(command.source, replica, nowMs)
        }),
        { abortSignal }
      )
    )
    const instance = yield* dbInstanceAvailable(rds, instanceId, `being restored from ${replica.arn}`)
    const endpoint = instance.Endpoint?.Address === undefined ? undefined : `${instance.Endpoint.Address}:${instance.Endpoint.Port ?? ""}`
    return { kind: "db-instance" as const, id: instanceId, status: instance.DBInstanceStatus ?? "available", ...(endpoint === undefined ? {} : { endpoint }) }
  })

/**
 * Aurora: a restored cluster has storage but no compute, so one writer DB instance is created in
 * it once the cluster is available; the cluster's writer endpoint is what applications connect to.
 */
const restoreDbCluster = (rds: RDSClient, command: FailoverCommand, replica: FoundReplica, nowMs: number) =>
  Effect.gen(function* () {
    const clusterId = command.newInstanceId ?? defaultInstanceId(command.source, nowMs)
    const writerId = `${clusterId}${WRITER_SUFFIX}`
    const engine = replica.engine
    if (engine === undefined) return yield* new OperationFailed({ message: `the replica ${replica.arn} does not say its engine, which RestoreDBClusterFromSnapshot needs` })
    yield* awsCall("rds:RestoreDBClusterFromSnapshot", (abortSignal) =>
      rds.send(
        new RestoreDBClusterFromSnapshotCommand({
          DBClusterIdentifier: clusterId,
          SnapshotIdentifier: replica.id,
          Engine: engine,
          ...networkOf(command),
          Tags: failoverTags(command.source, replica, nowMs)
        }),
        { abortSignal }
      )
    )
    const cluster = yield* rdsAvailable(
      `DB cluster ${clusterId}`,
      `being restored from ${replica.arn}`,
      awsCall("rds:DescribeDBClusters", (abortSignal) => rds.send(new DescribeDBClustersCommand({ DBClusterIdentifier: clusterId }), { abortSignal })).pipe(
        Effect.map((answer) => ({ status: answer.DBClusters?.[0]?.Status, found: answer.DBClusters?.[0] }))
      )
    )
    yield* awsCall("rds:CreateDBInstance", (abortSignal) =>
      rds.send(
        new CreateDBInstanceCommand({
          DBInstanceIdentifier: writerId,
          DBClusterIdentifier: clusterId,
          DBInstanceClass: command.instanceClass,
          Engine: cluster.Engine ?? engine,
          Tags: failoverTags(command.source, replica, nowMs)
        }),
        { abortSignal }
      )
    ).pipe(
      Effect.catchTag("AwsError", (error) =>
        Effect.fail(
          new OperationFailed({
            message: `DB cluster ${clusterId} was restored from ${replica.arn} and left as it is, but its writer ${writerId} could not be created: ${error.code}: ${error.message}`
          })
        )
      )
    )
    const writer = yield* dbInstanceAvailable(rds, writerId, `being created in DB cluster ${clusterId}`)
    const endpoint = cluster.Endpoint === undefined ? undefined : `${cluster.Endpoint}:${cluster.Port ?? ""}`
    return {
      kind: "db-cluster" as const,
      id: clusterId,
      instanceId: writerId,
      status: writer.DBInstanceStatus ?? "available",
      ...(endpoint === undefined ? {} : { endpoint })
    }
  })

const createVolume = (ec2: EC2Client, command: FailoverCommand, replica: FoundReplica, zone: string, nowMs: number) =>
  Effect.gen(function* () {
    const created = yield* awsCall("ec2:CreateVolume", (abortSignal) =>
      ec2.send(
        new CreateVolumeCommand({
          SnapshotId: replica.id,
          AvailabilityZone: zone,
          VolumeType: "gp3",
          TagSpecifications: [{ ResourceType: "volume", Tags: failoverTags(command.source, replica, nowMs) }]
        }),
        { abortSignal }
      )
    )
    const volumeId = created.VolumeId ?? ""
    const volume = yield* waitUntilReady(
      `volume ${volumeId}`,
      Effect.gen(function* () {
        const answer = yield* awsCall("ec2:DescribeVolumes", (abortSignal) => ec2.send(new DescribeVolumesCommand({ VolumeIds: [volumeId] }), { abortSignal }))
        const state = answer.Volumes?.[0]?.State ?? "unknown"
        if (state === "available") return state
        if (state === "error") return yield* new OperationFailed({ message: `volume ${volumeId} ended in the error state while it was being created from ${replica.arn}` })
        return yield* new NotReadyYet({ status: state })
      })
    )
    return { kind: "volume" as const, id: volumeId, status: volume, availabilityZone: zone }
  })

/**
 * `failover`: the newest replica of the source in the DR account and region, restored there
 * (a DB instance, or an EBS volume), waited for, and reported with the RPO it achieves.
 */
export const failoverCommand = (command: FailoverCommand) =>
  Effect.scoped(
    Effect.gen(function* () {
      const settings = yield* AwsConfig
      const region = command.region ?? settings.region
      const clients = yield* drClients(settings, region, command.roleArn, command.externalId)
      const where = `${region} of ${command.roleArn === undefined ? "the caller's account" : `the account of ${command.roleArn}`}`
      const replicas = command.source.kind === "EBS" ? yield* ebsReplicas(clients.ec2, command.source, region) : yield* rdsReplicas(clients.rds, command.source)
      const newest = replicas[0]
      if (newest === undefined) {
        return yield* new OperationFailed({
          message: `no replica of ${command.source.arn} in ${where}: no ${REPLICA_NOUNS[command.source.kind]} tagged ${REPLICA_TAGS.managedBy}=${REPLICA_TAGS.sharer} and ${command.source.matchTag}=${command.source.arn}`
        })
      }
      const startedAt = yield* Clock.currentTimeMillis
      const restored: FailoverResult["restored"] =
        command.source.kind === "RDS"
          ? yield* restoreDbInstance(clients.rds, command, newest, startedAt)
          : command.source.kind === "Aurora"
            ? yield* restoreDbCluster(clients.rds, command, newest, startedAt)
            : yield* createVolume(clients.ec2, command, newest, command.zone ?? "", startedAt)
      const now = yield* Clock.currentTimeMillis
      const from = newest.sourceTakenAt ?? newest.createdAt ?? now
      const result: FailoverResult = {
        source: command.source.arn,
        region,
        replica: {
          id: newest.id,
          arn: newest.arn,
          sourceTakenAt: newest.sourceTakenAt === undefined ? undefined : new Date(newest.sourceTakenAt).toISOString(),
          createdAt: newest.createdAt === undefined ? undefined : new Date(newest.createdAt).toISOString()
        },
        restored,
        rpoSeconds: Math.max(0, Math.round((now - from) / 1000)),
        rpoFrom: newest.sourceTakenAt === undefined ? "replica creation" : "source snapshot"
      }
      if (command.json) {
        yield* Console.log(JSON.stringify(result, null, 2))
        return
      }
      yield* Console.log(
        [
          `failover of ${result.source} in ${where}`,
          `  replica   ${result.replica.arn}${result.replica.sourceTakenAt === undefined ? "" : ` (source taken ${result.replica.sourceTakenAt})`}`,
          `  restored  ${RESTORED_NOUNS[restored.kind]} ${restored.id}${restored.instanceId === undefined ? "" : ` with writer DB instance ${restored.instanceId}`}: ${restored.status}`,
          ...(restored.endpoint === undefined ? [] : [`  endpoint  ${restored.endpoint}${restored.kind === "db-cluster" ? " (writer)" : ""}`]),
          ...(restored.availabilityZone === undefined ? [] : [`  zone      ${restored.availabilityZone}`]),
          `  RPO       ${describeAge(result.rpoSeconds)} (${result.rpoSeconds} s${result.rpoFrom === "source snapshot" ? "" : ", at least: counted from the replica's creation, the source's time is not recorded"})`
        ].join("\n")
      )
    })
  )
