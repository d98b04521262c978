import { createHash } from "node:crypto"
import { DeleteObjectsCommand } from "@aws-sdk/client-s3"
import { GetParameterCommand } from "@aws-sdk/client-ssm"
import { Clock, Duration, Effect, Redacted, Schedule, Schema } from "effect"
import { TABLE_CHECKSUM_METHOD, parseTableChecksums, parseTableList, type TableChecksum } from "@backup-actions/archive"
import { DatabaseEndpoints, S3, Ssm, awsCall, type AwsError, type DatabaseEndpointUnavailable } from "@backup-actions/aws"
import { ArchiveCompleted, type ArchivePlan, type DetailOf, type RestoredDatabase } from "@backup-actions/contracts"
import { runStep } from "@backup-actions/consumer"
import { ServiceSettings } from "@backup-actions/config"
import { failed, succeeded, type LeaseLost, type StepResult } from "@backup-actions/ledger"
import { archiveToS3, deleteFragments, type ArchiveResult } from "./archive-pipeline"
import { extensionOf } from "./compress"
import {
  dumpToolFor,
  runTool,
  toolExitedCleanly,
  toolRequest,
  versionCommand,
  type DatabaseInfo,
  type DbConnection,
  type DumpTool,
  type ToolCommand,
  type ToolFailed,
  type UnsupportedEngine
} from "./dump-tools"
import { runToCompletion, streamingToolLimits, type ToolTimedOut } from "./exec"
import { writeManifest } from "./manifest"
import { verifyStream, type ContentVerdict } from "./content-verification"
import { deleteSourceIfAsked, failedDetail, storedArchive } from "./outcome"
import { compressedUpperBound, partScheduleFor } from "./part-size"
import { toolChunkSource, type SourceReadError } from "./stream-source"

type ArchiveDetail = DetailOf<typeof ArchiveCompleted>

/** The ledger action of an engine-native dump. */
export const DUMP_ACTION = "archive:dump"

/** What the restorer announced: the recovery point and the instance restored from it. */
export interface DumpSubject {
  readonly recoveryPointArn: string
  /** The protected resource the recovery point is a backup of, carried into Archive Completed; absent when the announcing event came from an earlier build. */
  readonly resourceArn?: string | undefined
  readonly backupVaultName: string
  readonly snapshotId: string
  readonly plan: ArchivePlan
  readonly database: RestoredDatabase
}

export class NothingToDump extends Schema.TaggedError<NothingToDump>()("NothingToDump", {
  instanceId: Schema.String
}) {}

/**
 * One archive per database, so that each restores on its own into a database of any name
 * (`zstd -dc shop.sql.zst | psql -d anything`), and one manifest for the instance.
 * Names are URI-encoded: a database name may hold a `/`.
 */
export const dumpKeys = (snapshotId: string, compression: ArchivePlan["compression"]) => {
  const prefix = `archives/rds/${snapshotId}/dump/`
  return {
    prefix,
    manifest: `${prefix}manifest.ndjson`,
    database: (name: string) => `${prefix}${encodeURIComponent(name)}.sql.${extensionOf(compression)}`
  }
}

/** The master password, decrypted; it stays redacted everywhere but in the dump tool's environment. */
export const readPassword = (parameterName: string) =>
  Effect.flatMap(Ssm, (ssm) =>
    awsCall("ssm:GetParameter", (abortSignal) => ssm.send(new GetParameterCommand({ Name: parameterName, WithDecryption: true }), { abortSignal }))
  ).pipe(Effect.map((found) => Redacted.make(found.Parameter?.Value ?? "")))

const loginRefused = (error: ToolFailed | ToolTimedOut): boolean => error._tag === "ToolFailed" && error.authenticationFailed

/**
 * The instance's databases. Right after a master-password reset the old password can still
 * be in force for a while (RDS applies it asynchronously), so a refused login is retried on
 * a short backoff before it counts as a failure.
 */
const listDatabases = (tool: DumpTool, connection: DbConnection) =>
  runTool(tool.listDatabases(connection)).pipe(
    Effect.tapError((error) =>
      loginRefused(error) ? Effect.logInfo(`${error.tool}: login refused; the new master password may not be in effect yet`) : Effect.void
    ),
    Effect.retry({
      schedule: Schedule.exponential(Duration.millis(500), 1.5).pipe(Schedule.jittered, Schedule.upTo(Duration.minutes(2))),
      while: loginRefused
    }),
    Effect.map(tool.parseDatabaseList)
  )

/**
 * The dump tool's standard output as a chunk source. At the end of the output the source
 * waits for the tool to exit: a non-zero exit, a signal or a timeout (no output for
 * STREAM_INACTIVITY_TIMEOUT, see `streamingToolLimits`) fails the source, so the upload is
 * aborted and no partial dump is ever completed. The tool is stopped, and awaited, if the
 * archive stops early.
 */
export const dumpSource = (command: ToolCommand, onRead?: (chunk: Buffer) => void) =>
  Effect.flatMap(streamingToolLimits, (limits) =>
    toolChunkSource(toolRequest(command, limits), { detectHoles: false, ...(onRead === undefined ? {} : { onRead }) }, (tool) => toolExitedCleanly(command, tool))
  )

/**
 * Each table's row count and checksum, computed by the server from the data (see
 * @backup-actions/archive's dump-manifest.ts), for a restore to compare with. The restored
 * instance is the streamer's own and nothing writes to it, so they hold for the dump taken next.
 * The checksum script may read for long (it reads every row), so it has a streaming tool's
 * silence limit, each table's line resetting it. A failure is logged and leaves the tables out
 * of the manifest: the dump is still whole and checked by its SHA-256, only a restore cannot
 * compare the tables.
 */
const unreadable = (what: string) => (error: unknown) => new Error(`${what} could not be read: ${error instanceof Error ? error.message : String(error)}`)

const tableChecksums = (tool: DumpTool, connection: DbConnection, database: string) =>
  Effect.gen(function* () {
    const listed = yield* runTool(tool.listTables(connection, database))
    const tables = yield* Effect.try({ try: () => parseTableList(tool.checksumDialect, listed), catch: unreadable("the table list") })
    if (tables.length === 0) return []
    const command = tool.checksumTables(connection, database, tables)
    const limits = yield* streamingToolLimits
    const output = yield* runToCompletion(toolRequest(command, limits), (running) => toolExitedCleanly(command, running))
    const checksums = yield* Effect.try({ try: () => parseTableChecksums(output), catch: unreadable("the table checksums") })
    if (checksums.length !== tables.length) return yield* Effect.fail(new Error(`${tool.checksumDialect} printed ${checksums.length} checksums for ${tables.length} tables`))
    return checksums
  }).pipe(
    Effect.tapError((error) =>
      Effect.logWarning(`no table checksums for ${database}: ${"_tag" in error ? describeDumpFailure(error) : error.message}; a restore of it cannot compare its tables`)
    ),
    Effect.orElseSucceed(() => undefined)
  )

/** A plain SQL dump is larger than the data on disk (text, escaped binaries): room for four times that. */
const dumpUpperBound = (database: DatabaseInfo): number => compressedUpperBound(database.sizeBytes * 4 + 64 * 1024 * 1024)

interface DatabaseArchive {
  readonly database: string
  readonly key: string
  readonly written: ArchiveResult
  /** SHA-256 (hex) of the SQL as the dump tool wrote it, before compression. */
  readonly sqlSha256: string
  /** Each table's rows and checksum, as the server computed them; undefined when it could not. */
  readonly tables: ReadonlyArray<TableChecksum> | undefined
}

/** A written dump, and how far it was verified. */
interface VerifiedDump extends DatabaseArchive {
  readonly verdict: ContentVerdict
}

type DumpFailure = AwsError | SourceReadError | ToolFailed | ToolTimedOut | UnsupportedEngine | DatabaseEndpointUnavailable | NothingToDump

/** The one-line reason kept in the ledger and sent in Archive Completed. */
export const describeDumpFailure = (error: DumpFailure): string => {
  switch (error._tag) {
    case "AwsError":
      return `${error.operation} failed: ${error.code}: ${error.message}`
    case "SourceReadError":
      return `reading ${error.source}: ${error.reason}`
    case "ToolFailed":
      return `${error.tool} exited with ${error.exitCode ?? "an error"}: ${error.reason}`
    case "ToolTimedOut":
      return error.message
    case "UnsupportedEngine":
      return `engine ${error.engine} has no supported dump tool`
    case "DatabaseEndpointUnavailable":
      return `no endpoint to connect to ${error.instanceId} (${error.engine}): ${error.reason}`
    case "NothingToDump":
      return `instance ${error.instanceId} has no databases to dump`
  }
}

const base = (subject: DumpSubject) => ({
  schemaVersion: 1 as const,
  correlationId: subject.recoveryPointArn,
  idempotencyKey: `${subject.recoveryPointArn}#${DUMP_ACTION}`,
  snapshotId: subject.snapshotId,
  mode: "dump" as const,
  compression: subject.plan.compression,
  ...(subject.resourceArn === undefined ? {} : { resourceArn: subject.resourceArn }),
  restoredInstanceId: subject.database.instanceId
})

const failedDump = (subject: DumpSubject, reason: string, startedAt: number) =>
  Effect.map(Clock.currentTimeMillis, (now): StepResult<ArchiveDetail> => failed(reason, failedDetail(base(subject), reason, now - startedAt)))

/**
 * The outcome of written dumps: successful only when every database's dump was read back and
 * matched the SHA-256 of what its tool wrote. The source is deleted after it is recorded, by
 * the step's `afterSuccess`, and only when the policy asks for it.
 */
const dumpedOutcome = (subject: DumpSubject, archives: ReadonlyArray<VerifiedDump>, keys: ReturnType<typeof dumpKeys>, startedAt: number) =>
  Effect.gen(function* () {
    const settings = yield* ServiceSettings
    const unverified = archives.filter((archive) => archive.verdict.verified !== "content")
    // The whole is verified as far as its least verified database.
    const verified = unverified.some((archive) => archive.verdict.verified === "none") ? "none" : unverified.length > 0 ? "upload" : "content"
    const now = yield* Clock.currentTimeMillis
    const detail: ArchiveDetail = {
      ...base(subject),
      status: verified === "content" ? "archived" : "failed",
      format: "sql",
      location: { bucket: settings.artifactBucket, key: keys.prefix },
      manifest: { bucket: settings.artifactBucket, key: keys.manifest },
      bytesRead: archives.reduce((total, archive) => total + archive.written.inputBytes, 0),
      bytesStored: archives.reduce((total, archive) => total + archive.written.size, 0),
      durationMs: now - startedAt,
      verified,
      sourceDeleted: false,
      databases: archives.map((archive) => ({
        database: archive.database,
        location: { bucket: settings.artifactBucket, key: archive.key },
        bytesRead: archive.written.inputBytes,
        bytesStored: archive.written.size,
        checksum: { algorithm: "SHA256" as const, type: "COMPOSITE" as const, value: archive.written.composite },
        verified: archive.verdict.verified
      }))
    }
    if (unverified.length === 0) return succeeded(detail)
    const reason = unverified.map((archive) => `${archive.database}: ${"reason" in archive.verdict ? archive.verdict.reason : ""}`).join("; ")
    return failed(reason, { ...detail, reason })
  })

/** Removes the dumps of a failed attempt, and their part fragments: a half set of databases is not an archive. */
const deleteObjects = (bucket: string, archives: ReadonlyArray<{ readonly key: string; readonly parts: number }>) =>
  archives.length === 0
    ? Effect.void
    : Effect.flatMap(S3, (s3) =>
        awsCall("s3:DeleteObjects", (abortSignal) =>
          s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: archives.map((archive) => ({ Key: archive.key })), Quiet: true } }), { abortSignal })
        )
      ).pipe(
        Effect.zipRight(Effect.forEach(archives, (archive) => deleteFragments(bucket, archive.key, archive.parts), { discard: true })),
        Effect.catchAll((error) => Effect.logWarning(`could not delete the dumps of a failed attempt: ${error.message}`))
      )

/**
 * Dumps every database of the restored instance with the engine's own tool, streamed
 * through the archive pipeline (zstd frames, parts with their SHA-256, composite checksum
 * checked against S3), then writes the manifest. Any failure ends as a failed outcome
 * with its reason, which the restorer answers by deleting the instance.
 */
export const archiveDump = (subject: DumpSubject) =>
  Effect.gen(function* () {
    const settings = yield* ServiceSettings
    const step = { recoveryPointArn: subject.recoveryPointArn, action: DUMP_ACTION }
    const keys = dumpKeys(subject.snapshotId, subject.plan.compression)
    const spec = {
      step,
      contract: ArchiveCompleted,
      resources: [subject.recoveryPointArn],
      gaveUp: (reason: string) => failedDetail(base(subject), reason, 0),
      afterSuccess: (outcome: ArchiveDetail) =>
        deleteSourceIfAsked(subject.plan, { recoveryPointArn: subject.recoveryPointArn, backupVaultName: subject.backupVaultName }, outcome)
    }
    yield* runStep(spec, ({ claim, record }) =>
      Effect.gen(function* () {
        const startedAt = yield* Clock.currentTimeMillis
        const written: Array<DatabaseArchive> = []
        const attempt = Effect.gen(function* () {
          const tool = yield* dumpToolFor(subject.database.engine)
          const endpoint = yield* Effect.flatMap(DatabaseEndpoints, (endpoints) => endpoints.endpointOf(subject.database))
          const password = yield* readPassword(subject.database.passwordParameter)
          const connection: DbConnection = { ...endpoint, user: subject.database.user, password }
          const toolVersion = (yield* runTool(versionCommand(tool))).trim()
          const databases = yield* listDatabases(tool, connection)
          if (databases.length === 0) return yield* new NothingToDump({ instanceId: subject.database.instanceId })
          yield* Effect.logInfo(`dumping ${databases.length} database(s) of ${subject.database.instanceId} with ${toolVersion}: ${databases.map((database) => database.name).join(", ")}`)
          for (const [index, database] of databases.entries()) {
            const key = keys.database(database.name)
            const tables = yield* tableChecksums(tool, connection, database.name)
            const sql = createHash("sha256")
            const archive = yield* archiveToS3({
              step: claim,
              target: { bucket: settings.artifactBucket, key, contentType: `application/sql+${subject.plan.compression}` },
              compression: subject.plan.compression,
              partSchedule: partScheduleFor(dumpUpperBound(database)),
              // A dump is a stream: a resumed attempt starts it over (an earlier upload is aborted).
              resumable: false,
              previousUpload: index === 0 ? record.upload : undefined,
              openSource: () => dumpSource(tool.dumpDatabase(connection, database.name), (chunk) => sql.update(chunk))
            })
            written.push({ database: database.name, key, written: archive, sqlSha256: sql.digest("hex"), tables })
            const rows = tables === undefined ? "" : `, ${tables.length} table(s) of ${tables.reduce((total, table) => total + table.rows, 0)} rows`
            yield* Effect.logInfo(`dumped ${database.name}: ${archive.inputBytes} bytes of SQL, ${archive.size} stored${rows}`)
          }
          yield* writeManifest({
            bucket: settings.artifactBucket,
            key: keys.manifest,
            header: {
              kind: "backup-actions/dump-manifest",
              version: 1,
              snapshotId: subject.snapshotId,
              recoveryPointArn: subject.recoveryPointArn,
              engine: subject.database.engine,
              engineVersion: subject.database.engineVersion,
              tool: toolVersion,
              format: "sql",
              compression: subject.plan.compression,
              databases: written.map((archive) => archive.database),
              sqlBytes: written.reduce((total, archive) => total + archive.written.inputBytes, 0),
              archiveBytes: written.reduce((total, archive) => total + archive.written.size, 0)
            },
            fragments: [],
            archives: written.map((archive) => ({ key: archive.key, parts: archive.written.parts })),
            lines: written.map((archive) =>
              JSON.stringify({
                database: archive.database,
                archive: archive.key,
                sqlBytes: archive.written.inputBytes,
                sqlSha256: archive.sqlSha256,
                archiveBytes: archive.written.size,
                checksum: { algorithm: "SHA256", type: "COMPOSITE", value: archive.written.composite },
                ...(archive.tables === undefined ? {} : { tableChecksum: TABLE_CHECKSUM_METHOD, tables: archive.tables })
              })
            )
          })
          const verified = yield* Effect.forEach(written, (archive) =>
            Effect.map(
              verifyStream(storedArchive({ ...archive.written, bucket: settings.artifactBucket, key: archive.key }, subject.plan.compression), {
                sha256: archive.sqlSha256,
                bytes: archive.written.inputBytes
              }),
              (verdict): VerifiedDump => ({ ...archive, verdict })
            )
          )
          return yield* dumpedOutcome(subject, verified, keys, startedAt)
        })
        return yield* attempt.pipe(
          Effect.catchIf(
            (error): error is Exclude<typeof error, LeaseLost> => error._tag !== "LeaseLost",
            (error) =>
              deleteObjects(
                settings.artifactBucket,
                written.map((archive) => ({ key: archive.key, parts: archive.written.parts }))
              ).pipe(Effect.zipRight(failedDump(subject, describeDumpFailure(error), startedAt)))
          )
        )
      })
    )
  }).pipe(Effect.annotateLogs({ snapshotId: subject.snapshotId, mode: "dump" }))
