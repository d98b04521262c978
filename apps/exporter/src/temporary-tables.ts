import {
  DeleteTableCommand,
  DescribeTableCommand,
  ListTablesCommand,
  ListTagsOfResourceCommand,
  RestoreTableFromBackupCommand,
  TagResourceCommand,
  type Tag
} from "@aws-sdk/client-dynamodb"
import { Clock, Duration, Effect, Schedule } from "effect"
import { DynamoDb, awsCall, undefinedWhenNotFound, type AwsError } from "@backup-actions/aws"
import type { DynamoDbBackupRef } from "./arns"

/**
 * Every temporary table's name starts with this, and nothing else the project makes does: the
 * sweeper recognises a leftover by it even when the attempt that made it died before tagging
 * it. The exporter's IAM policy grants its table actions on `table/backup-actions-export-*`.
 */
export const TEMPORARY_TABLE_PREFIX = "backup-actions-export-"

/** Tags on every temporary table. DeleteTable is allowed only on a table that carries MANAGED_TAG. */
export const MANAGED_TAG = "backup-actions:managed"
export const RECOVERY_POINT_TAG = "backup-actions:recovery-point"
export const CREATED_AT_TAG = "backup-actions:created-at"

/**
 * The temporary table's name: the project's prefix, then the backup and the attempt, so it is
 * the same for every retry of one attempt (a lost reply to RestoreTableFromBackup finds its
 * table again) and new for the next attempt (a table a crashed attempt left behind never
 * blocks it), within DynamoDB's 255 characters.
 */
export const temporaryTableName = (backup: DynamoDbBackupRef, attempt: number): string =>
  `${TEMPORARY_TABLE_PREFIX}${backup.backupId}-${attempt}-${backup.table}`.slice(0, 255)

export const isTemporaryTableName = (name: string): boolean => name.startsWith(TEMPORARY_TABLE_PREFIX)

const tagsOf = (tags: ReadonlyArray<Tag>): Record<string, string> =>
  Object.fromEntries(tags.flatMap((tag) => (tag.Key === undefined ? [] : [[tag.Key, tag.Value ?? ""]])))

/**
 * Tags a table as one of the project's temporary tables. RestoreTableFromBackup takes no tags,
 * so this runs right after it: a table just made may not be found yet (DynamoDB's describe
 * and tag calls are eventually consistent), and one that DynamoDB is still creating may be
 * refused as in use; both are waited out.
 */
export const tagTemporaryTable = (tableArn: string, tags: Record<string, string>) =>
  Effect.flatMap(DynamoDb, (dynamodb) =>
    awsCall("dynamodb:TagResource", (abortSignal) =>
      dynamodb.send(new TagResourceCommand({ ResourceArn: tableArn, Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })) }), { abortSignal })
    )
  ).pipe(
    Effect.asVoid,
    Effect.retry({
      schedule: Schedule.exponential(Duration.seconds(1), 1.5).pipe(Schedule.jittered, Schedule.upTo(Duration.minutes(2))),
      while: (error) => error.kind === "not-found"
    }),
    Effect.retry({
      schedule: Schedule.exponential(Duration.seconds(2), 1.5).pipe(
        Schedule.modifyDelay((delay) => Duration.min(delay, Duration.minutes(1))),
        Schedule.jittered,
        Schedule.upTo(Duration.hours(12))
      ),
      while: (error) => error.kind === "conflict"
    })
  )

/** Deletes a temporary table; one already gone is fine. */
const deleteTemporaryTable = (table: string) =>
  Effect.flatMap(DynamoDb, (dynamodb) =>
    awsCall("dynamodb:DeleteTable", (abortSignal) => dynamodb.send(new DeleteTableCommand({ TableName: table }), { abortSignal }))
  ).pipe(
    Effect.tap(() => Effect.logInfo(`deleted temporary table ${table}`)),
    Effect.catchIf(
      (error) => error.kind === "not-found",
      () => Effect.logInfo(`temporary table ${table} was already deleted`)
    )
  )

/**
 * Restores the backup to a temporary table that is deleted when the scope closes (after
 * success, failure or interruption alike), and tags it as the project's as soon as it exists.
 * A retried RestoreTableFromBackup whose first reply was lost finds its table already there:
 * the name is this attempt's alone, so that table is taken as the one restored.
 */
export const temporaryTable = (backup: DynamoDbBackupRef, recoveryPointArn: string, attempt: number) =>
  Effect.gen(function* () {
    const dynamodb = yield* DynamoDb
    const name = temporaryTableName(backup, attempt)
    const createdAt = yield* Clock.currentTimeMillis
    const table = yield* Effect.acquireRelease(
      awsCall("dynamodb:RestoreTableFromBackup", (abortSignal) =>
        dynamodb.send(
          new RestoreTableFromBackupCommand({
            TargetTableName: name,
            BackupArn: backup.backupArn,
            // On demand: no capacity to provision for a table that lives for one scan; no indexes to build.
            BillingModeOverride: "PAY_PER_REQUEST",
            GlobalSecondaryIndexOverride: [],
            LocalSecondaryIndexOverride: []
          }),
          { abortSignal }
        )
      ).pipe(
        Effect.map((restored) => restored.TableDescription?.TableArn),
        Effect.catchIf(
          (error) => error.code === "TableAlreadyExistsException",
          () =>
            Effect.logInfo(`temporary table ${name} already exists: a lost reply's restore, taken as this attempt's`).pipe(
              Effect.zipRight(awsCall("dynamodb:DescribeTable", (abortSignal) => dynamodb.send(new DescribeTableCommand({ TableName: name }), { abortSignal }))),
              Effect.map((described) => described.Table?.TableArn)
            )
        ),
        Effect.map((arn) => ({ name, arn: arn ?? "" }))
      ),
      (restored) =>
        // The sweeper deletes what this could not; the export's outcome stands either way.
        deleteTemporaryTable(restored.name).pipe(
          Effect.catchAll((error) => Effect.logError(`could not delete temporary table ${restored.name}: ${error.code}: ${error.message}`))
        )
    )
    yield* tagTemporaryTable(table.arn, {
      [MANAGED_TAG]: "true",
      [RECOVERY_POINT_TAG]: recoveryPointArn.slice(0, 256),
      [CREATED_AT_TAG]: new Date(createdAt).toISOString()
    })
    return table
  })

/** A table's tags, every page; none when the table is gone. */
const tagsOfTable = (tableArn: string) =>
  Effect.gen(function* () {
    const dynamodb = yield* DynamoDb
    const tags: Array<Tag> = []
    let nextToken: string | undefined
    do {
      const page = yield* undefinedWhenNotFound(
        awsCall("dynamodb:ListTagsOfResource", (abortSignal) =>
          dynamodb.send(new ListTagsOfResourceCommand({ ResourceArn: tableArn, NextToken: nextToken }), { abortSignal })
        )
      )
      tags.push(...(page?.Tags ?? []))
      nextToken = page?.NextToken
    } while (nextToken !== undefined)
    return tagsOf(tags)
  })

/** Every table whose name has the temporary tables' prefix, every page of ListTables. */
const listTemporaryTables = Effect.gen(function* () {
  const dynamodb = yield* DynamoDb
  const names: Array<string> = []
  let start: string | undefined
  do {
    const page = yield* awsCall("dynamodb:ListTables", (abortSignal) => dynamodb.send(new ListTablesCommand({ ExclusiveStartTableName: start }), { abortSignal }))
    names.push(...(page.TableNames ?? []).filter(isTemporaryTableName))
    start = page.LastEvaluatedTableName
  } while (start !== undefined)
  return names
})

/** Deletes one temporary table if it was created before the limit; says whether it did. */
const sweepTable = (name: string, limit: number) =>
  Effect.gen(function* () {
    const dynamodb = yield* DynamoDb
    const described = yield* undefinedWhenNotFound(
      awsCall("dynamodb:DescribeTable", (abortSignal) => dynamodb.send(new DescribeTableCommand({ TableName: name }), { abortSignal }))
    )
    const table = described?.Table
    if (table === undefined || table.TableArn === undefined || table.TableStatus === "DELETING") return false
    const tags = yield* tagsOfTable(table.TableArn)
    // DynamoDB's creation time; the tag only for a table that lacks it.
    const createdAt = table.CreationDateTime?.getTime() ?? Date.parse(tags[CREATED_AT_TAG] ?? "")
    if (!Number.isFinite(createdAt) || createdAt >= limit) return false
    // A table whose attempt died before tagging it: DeleteTable is only allowed on tagged ones.
    if (tags[MANAGED_TAG] !== "true") yield* tagTemporaryTable(table.TableArn, { [MANAGED_TAG]: "true" })
    const recoveryPoint = tags[RECOVERY_POINT_TAG]
    yield* Effect.logInfo(
      `sweeping temporary table ${name}, created ${new Date(createdAt).toISOString()}${recoveryPoint === undefined ? "" : ` for ${recoveryPoint}`}`
    )
    return yield* deleteTemporaryTable(name).pipe(
      Effect.as(true),
      Effect.catchIf(
        (error) => error.kind === "conflict",
        (error) => Effect.logInfo(`temporary table ${name} is in use (${error.code}); the next sweep tries again`).pipe(Effect.as(false))
      )
    )
  })

/** How old a temporary table must be before the sweep deletes it: longer than any export scans one. */
export const TEMPORARY_TABLE_MAX_AGE = Duration.hours(48)

/**
 * Deletes the temporary tables that crashed or interrupted exports left behind: every table
 * whose name has TEMPORARY_TABLE_PREFIX and that DynamoDB created longer ago than `olderThan`
 * (by the fiber's Clock). A younger one is kept (an export may still be scanning it, so
 * `olderThan` must exceed the longest export), a table without the prefix is never looked at,
 * and one that is in use is left to the next sweep. A table that fails is logged and the others
 * are still swept; the sweep then fails with the first error. Returns the tables deleted.
 */
export const sweepTemporaryTables = (olderThan: Duration.DurationInput): Effect.Effect<ReadonlyArray<string>, AwsError, DynamoDb> =>
  Effect.gen(function* () {
    const now = yield* Clock.currentTimeMillis
    const limit = now - Duration.toMillis(Duration.decode(olderThan))
    const names = yield* listTemporaryTables
    const deleted: Array<string> = []
    const errors: Array<AwsError> = []
    for (const name of names) {
      const outcome = yield* Effect.either(sweepTable(name, limit))
      if (outcome._tag === "Left") {
        errors.push(outcome.left)
        yield* Effect.logError(`could not sweep temporary table ${name}: ${outcome.left.operation}: ${outcome.left.code}: ${outcome.left.message}`)
      } else if (outcome.right) {
        deleted.push(name)
      }
    }
    if (deleted.length > 0) yield* Effect.logInfo(`swept ${deleted.length} temporary table(s): ${deleted.join(", ")}`)
    const [first] = errors
    if (first !== undefined) return yield* first
    return deleted
  })
