import { createHash, randomInt } from "node:crypto"
import {
  DeleteDBInstanceCommand,
  DescribeDBInstancesCommand,
  DescribeDBSnapshotsCommand,
  ModifyDBInstanceCommand,
  RestoreDBInstanceFromDBSnapshotCommand,
  type DBInstance,
  type DBSnapshot
} from "@aws-sdk/client-rds"
import { DeleteParameterCommand, DescribeParametersCommand, PutParameterCommand } from "@aws-sdk/client-ssm"
import { Clock, Config, Duration, Effect, Option, Redacted, Schedule, Schema } from "effect"
import { AwsError, Rds, Ssm, awsCall } from "@backup-actions/aws"
import { RESTORED_PASSWORD_PATH, instanceIdOfRestoredPassword, restoredPasswordParameter } from "@backup-actions/config"
import { CREATED_AT_TAG, MANAGED_TAG, RECOVERY_POINT_TAG } from "./volumes"

/** Engines whose own dump tool the streamer runs. */
export const DUMP_ENGINES: ReadonlyArray<string> = ["postgres", "mysql", "mariadb"]

/** The DB snapshot identifier in an RDS snapshot ARN (`arn:aws:rds:<region>:<account>:snapshot:<id>`). */
export const dbSnapshotIdFromArn = (arn: string): string | undefined => /^arn:[^:]+:rds:[^:]*:[^:]*:snapshot:(.+)$/.exec(arn)?.[1]

/**
 * One instance id per recovery point, the same on every attempt: a retried or resumed
 * restore finds the instance an earlier attempt made instead of making a second one.
 * (RDS ids: a letter first, letters, digits and single hyphens, at most 63 characters.)
 */
export const dumpInstanceId = (recoveryPointArn: string): string =>
  `ba-dump-${createHash("sha256").update(recoveryPointArn).digest("hex").slice(0, 20)}`

const PASSWORD_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
export const PASSWORD_LENGTH = 32

/**
 * A fresh master password: 32 letters and digits (about 190 bits), which every engine
 * accepts (RDS refuses `/`, `"`, `@` and spaces, MySQL allows at most 41 characters).
 * Redacted, so that it prints as `<redacted>` wherever it might end up in a log.
 */
export const generateMasterPassword: Effect.Effect<Redacted.Redacted<string>> = Effect.sync(() =>
  Redacted.make(Array.from({ length: PASSWORD_LENGTH }, () => PASSWORD_ALPHABET.charAt(randomInt(PASSWORD_ALPHABET.length))).join(""))
)

export class NotDumpable extends Schema.TaggedError<NotDumpable>()("NotDumpable", {
  recoveryPointArn: Schema.String,
  reason: Schema.String
}) {}

export class InstanceNotReady extends Schema.TaggedError<InstanceNotReady>()("InstanceNotReady", {
  instanceId: Schema.String,
  status: Schema.String
}) {}

/** States an instance passes through on its way to `available`; any other state is final. */
const TRANSITIONAL_STATES = new Set([
  "creating",
  "backing-up",
  "modifying",
  "resetting-master-credentials",
  "configuring-enhanced-monitoring",
  "configuring-iam-database-auth",
  "configuring-log-exports",
  "storage-optimization",
  "rebooting",
  "renaming",
  "starting",
  "upgrading",
  "maintenance"
])

/** The DB snapshot behind a recovery point, checked to be one that a dump can read. */
export const dumpableSnapshot = (recoveryPointArn: string) =>
  Effect.gen(function* () {
    const snapshotId = dbSnapshotIdFromArn(recoveryPointArn)
    if (snapshotId === undefined) {
      return yield* new NotDumpable({ recoveryPointArn, reason: `recovery point "${recoveryPointArn}" is not an RDS DB snapshot ARN` })
    }
    const rds = yield* Rds
    const found = yield* awsCall("rds:DescribeDBSnapshots", (abortSignal) =>
      rds.send(new DescribeDBSnapshotsCommand({ DBSnapshotIdentifier: snapshotId }), { abortSignal })
    )
    const snapshot: DBSnapshot | undefined = found.DBSnapshots?.[0]
    if (snapshot === undefined) return yield* new NotDumpable({ recoveryPointArn, reason: `DB snapshot ${snapshotId} does not exist` })
    const engine = snapshot.Engine ?? "unknown"
    if (!DUMP_ENGINES.includes(engine)) {
      return yield* new NotDumpable({
        recoveryPointArn,
        reason: `DB snapshot ${snapshotId} is of engine ${engine}, which has no supported dump tool (supported: ${DUMP_ENGINES.join(", ")})`
      })
    }
    if (snapshot.Status !== undefined && snapshot.Status !== "available") {
      return yield* new NotDumpable({ recoveryPointArn, reason: `DB snapshot ${snapshotId} is ${snapshot.Status}, not available` })
    }
    return { snapshotId, engine, engineVersion: snapshot.EngineVersion ?? "" }
  })

/** Optional placement of restored instances, so that the streamer can reach them (none locally). */
const placement = Effect.all({
  subnetGroup: Config.option(Config.string("BACKUP_ACTIONS_DB_SUBNET_GROUP")),
  securityGroups: Config.option(Config.string("BACKUP_ACTIONS_DB_SECURITY_GROUP_IDS"))
})

/**
 * Restores the snapshot to a small, private, single-AZ instance tagged as ours. An
 * instance that an earlier attempt made for the same recovery point is taken over.
 */
export const restoreInstance = (options: {
  readonly recoveryPointArn: string
  readonly snapshotId: string
  readonly instanceId: string
  readonly instanceClass: string
}) =>
  Effect.gen(function* () {
    const rds = yield* Rds
    const where = yield* placement
    const now = yield* Clock.currentTimeMillis
    yield* awsCall("rds:RestoreDBInstanceFromDBSnapshot", (abortSignal) =>
      rds.send(
        new RestoreDBInstanceFromDBSnapshotCommand({
          DBInstanceIdentifier: options.instanceId,
          DBSnapshotIdentifier: options.recoveryPointArn,
          DBInstanceClass: options.instanceClass,
          PubliclyAccessible: false,
          MultiAZ: false,
          DeletionProtection: false,
          AutoMinorVersionUpgrade: false,
          ...Option.match(where.subnetGroup, { onNone: () => ({}), onSome: (name) => ({ DBSubnetGroupName: name }) }),
          ...Option.match(where.securityGroups, {
            onNone: () => ({}),
            onSome: (ids) => ({ VpcSecurityGroupIds: ids.split(",").map((id) => id.trim()).filter((id) => id !== "") })
          }),
          Tags: [
            { Key: MANAGED_TAG, Value: "true" },
            { Key: RECOVERY_POINT_TAG, Value: options.recoveryPointArn.slice(0, 255) },
            { Key: CREATED_AT_TAG, Value: new Date(now).toISOString() },
            { Key: "Name", Value: `backup-actions dump of ${options.snapshotId}`.slice(0, 255) }
          ]
        }),
        { abortSignal }
      )
    ).pipe(
      Effect.catchIf(
        (error) => error.code.startsWith("DBInstanceAlreadyExists"),
        () => Effect.logInfo(`instance ${options.instanceId} exists from an earlier attempt; taking it over`)
      )
    )
  })

/** The instance as RDS describes it. */
export const describeInstance = (instanceId: string) =>
  Effect.flatMap(Rds, (rds) =>
    awsCall("rds:DescribeDBInstances", (abortSignal) => rds.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: instanceId }), { abortSignal }))
  ).pipe(
    Effect.flatMap((found) => {
      const instance: DBInstance | undefined = found.DBInstances?.[0]
      return instance === undefined
        ? Effect.fail(new AwsError({ operation: "rds:DescribeDBInstances", code: "DBInstanceNotFound", message: `instance ${instanceId} does not exist`, kind: "not-found" }))
        : Effect.succeed(instance)
    })
  )

/**
 * Polls with a growing, jittered interval until the instance is available: a restore takes
 * minutes. A state that is not on the way there fails at once.
 */
export const waitUntilInstanceAvailable = (instanceId: string) =>
  Effect.gen(function* () {
    const instance = yield* describeInstance(instanceId)
    const status = instance.DBInstanceStatus ?? "unknown"
    if (status !== "available") return yield* new InstanceNotReady({ instanceId, status })
    return instance
  }).pipe(
    Effect.retry({
      schedule: Schedule.exponential(Duration.seconds(2), 1.5).pipe(
        Schedule.jittered,
        Schedule.modifyDelay((delay) => Duration.min(delay, Duration.seconds(30))),
        Schedule.upTo(Duration.minutes(90))
      ),
      while: (error) => error._tag === "InstanceNotReady" && TRANSITIONAL_STATES.has(error.status)
    })
  )

/**
 * Gives the instance a master password of our own: a restore keeps the snapshot's, which
 * we do not know. The password goes to SSM as a SecureString first, so that it is never
 * set on the instance without being kept where the streamer can read it.
 */
export const setMasterPassword = (instanceId: string) =>
  Effect.gen(function* () {
    const rds = yield* Rds
    const ssm = yield* Ssm
    const password = yield* generateMasterPassword
    const parameterName = restoredPasswordParameter(instanceId)
    yield* awsCall("ssm:PutParameter", (abortSignal) =>
      ssm.send(
        new PutParameterCommand({
          Name: parameterName,
          Type: "SecureString",
          Value: Redacted.value(password),
          Overwrite: true,
          Description: `master password of the backup-actions restore ${instanceId}; deleted with the instance`
        }),
        { abortSignal }
      )
    )
    yield* awsCall("rds:ModifyDBInstance", (abortSignal) =>
      rds.send(new ModifyDBInstanceCommand({ DBInstanceIdentifier: instanceId, MasterUserPassword: Redacted.value(password), ApplyImmediately: true }), { abortSignal })
    )
    return parameterName
  })

/** Deletes a restored instance (no final snapshot, no retained backups) and its password; either already gone is fine. */
export const deleteRestoredInstance = (instanceId: string) =>
  Effect.gen(function* () {
    const rds = yield* Rds
    const ssm = yield* Ssm
    yield* awsCall("rds:DeleteDBInstance", (abortSignal) =>
      rds.send(new DeleteDBInstanceCommand({ DBInstanceIdentifier: instanceId, SkipFinalSnapshot: true, DeleteAutomatedBackups: true }), { abortSignal })
    ).pipe(
      Effect.asVoid,
      Effect.catchIf(
        (error) => error.kind === "not-found",
        () => Effect.logInfo(`instance ${instanceId} was already deleted`)
      )
    )
    yield* awsCall("ssm:DeleteParameter", (abortSignal) => ssm.send(new DeleteParameterCommand({ Name: restoredPasswordParameter(instanceId) }), { abortSignal })).pipe(
      Effect.asVoid,
      Effect.catchIf(
        (error) => error.kind === "not-found",
        () => Effect.void
      )
    )
  })

const tagValue = (instance: DBInstance, key: string): string | undefined => instance.TagList?.find((tag) => tag.Key === key)?.Value

/**
 * Deletes what a crash left behind: restored instances tagged as ours and older than the
 * limit, with their passwords, and passwords older than the limit whose instance is gone.
 * Never touches an untagged instance.
 */
export const sweepRestoredInstances = (olderThan: Duration.DurationInput) =>
  Effect.gen(function* () {
    const rds = yield* Rds
    const ssm = yield* Ssm
    const now = yield* Clock.currentTimeMillis
    const limit = now - Duration.toMillis(Duration.decode(olderThan))
    const deleted: Array<string> = []
    const existing = new Set<string>()
    let marker: string | undefined
    do {
      const page = yield* awsCall("rds:DescribeDBInstances", (abortSignal) => rds.send(new DescribeDBInstancesCommand({ Marker: marker }), { abortSignal }))
      for (const instance of page.DBInstances ?? []) {
        const instanceId = instance.DBInstanceIdentifier
        if (instanceId === undefined) continue
        const createdAt = Date.parse(tagValue(instance, CREATED_AT_TAG) ?? "")
        const ours = tagValue(instance, MANAGED_TAG) === "true"
        if (ours && Number.isFinite(createdAt) && createdAt < limit && instance.DBInstanceStatus !== "deleting") {
          yield* deleteRestoredInstance(instanceId)
          deleted.push(instanceId)
        } else {
          existing.add(instanceId)
        }
      }
      marker = page.Marker
    } while (marker !== undefined)
    let nextToken: string | undefined
    do {
      const page = yield* awsCall("ssm:DescribeParameters", (abortSignal) =>
        ssm.send(
          new DescribeParametersCommand({ ParameterFilters: [{ Key: "Path", Option: "Recursive", Values: [RESTORED_PASSWORD_PATH] }], NextToken: nextToken }),
          { abortSignal }
        )
      )
      for (const parameter of page.Parameters ?? []) {
        const instanceId = instanceIdOfRestoredPassword(parameter.Name ?? "")
        const modified = parameter.LastModifiedDate?.getTime() ?? now
        if (instanceId !== undefined && !existing.has(instanceId) && !deleted.includes(instanceId) && modified < limit) {
          yield* awsCall("ssm:DeleteParameter", (abortSignal) => ssm.send(new DeleteParameterCommand({ Name: parameter.Name }), { abortSignal })).pipe(
            Effect.catchIf(
              (error) => error.kind === "not-found",
              () => Effect.void
            )
          )
          yield* Effect.logInfo(`swept the password of instance ${instanceId}, which no longer exists`)
        }
      }
      nextToken = page.NextToken
    } while (nextToken !== undefined)
    if (deleted.length > 0) yield* Effect.logInfo(`swept ${deleted.length} leftover DB instances: ${deleted.join(", ")}`)
    return deleted
  })
