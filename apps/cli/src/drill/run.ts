import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { DeleteTableCommand } from "@aws-sdk/client-dynamodb"
import { DeleteSnapshotCommand } from "@aws-sdk/client-ec2"
import { Cause, Clock, Console, Effect, Either, Exit } from "effect"
import { DynamoDb, Ec2, Kms, awsCall, deleteImage, type AwsError } from "@backup-actions/aws"
import type { DrillRecord, DrillTarget } from "@backup-actions/ledger"
import { bringBack } from "../cold-storage"
import { describeError, OperationFailed, type CliError } from "../errors"
import { restoreDumpToScratch } from "../restore/database"
import { restoreImage } from "../restore/image"
import { restoreToSnapshot } from "../restore/snapshot"
import { restoreTableCommand } from "../restore/table"
import { restoreTreeCommand } from "../restore/tree"
import { manifestBeside, s3Url, type S3Location } from "../s3-url"
import { drillTargetOf, type DrillCandidate } from "./plan"
import { DRILL_SCRATCH_PREFIX } from "../restored-names"

/** What a drill restored into: named for the record, and how to delete it. */
interface Scratch {
  readonly name: string
  readonly discard: Effect.Effect<void, AwsError | OperationFailed, DynamoDb | Ec2>
}

/** Where drills may restore what needs a server: the scratch database servers, by URL naming no database. */
export interface DrillOptions {
  readonly scratchDatabases: ReadonlyArray<string>
}

/** What one restore made and how many bytes it restored. */
interface Restored {
  readonly scratch: Scratch
  readonly bytes?: number
}

/** A scratch name no two drills share: AMI, table and directory names are unique per account and region. */
const scratchName = (startedAt: number): string => `${DRILL_SCRATCH_PREFIX}${new Date(startedAt).toISOString().replace(/[-:.]/g, "").toLowerCase()}`

/** What a restore command prints for a user goes to stderr in a drill: stdout is the drill's table. */
const quietly = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Console.consoleWith((console) => Effect.withConsole(effect, { ...console, log: (...args: ReadonlyArray<unknown>) => console.error(...args) }))

const deleteSnapshot = (snapshotId: string) =>
  Effect.flatMap(Ec2, (ec2) => awsCall("ec2:DeleteSnapshot", (abortSignal) => ec2.send(new DeleteSnapshotCommand({ SnapshotId: snapshotId }), { abortSignal }))).pipe(
    Effect.catchIf((error) => error.kind === "not-found", () => Effect.void),
    Effect.asVoid
  )

const deleteTable = (table: string) =>
  Effect.flatMap(DynamoDb, (dynamodb) => awsCall("dynamodb:DeleteTable", (abortSignal) => dynamodb.send(new DeleteTableCommand({ TableName: table }), { abortSignal }))).pipe(
    Effect.catchIf((error) => error.kind === "not-found", () => Effect.void),
    Effect.asVoid
  )

/**
 * One restore into scratch, verified by the restore itself (each reads back what it made and
 * compares it with the artifact's manifest, failing otherwise). The scratch is registered
 * before the restore can fail, so that it is deleted on every outcome, interruption included.
 */
const restoreInto = (target: DrillTarget, location: S3Location, name: string, options: DrillOptions, made: (scratch: Scratch) => void) =>
  Effect.gen(function* () {
    switch (target) {
      case "snapshot": {
        yield* bringBack([manifestBeside(location), location])
        // restoreToSnapshot deletes its snapshot itself when the restore or its read-back fails.
        const restored = yield* restoreToSnapshot(location)
        const scratch: Scratch = { name: restored.snapshotId, discard: deleteSnapshot(restored.snapshotId) }
        made(scratch)
        return { scratch, bytes: restored.bytes } satisfies Restored
      }
      case "directory": {
        yield* bringBack([manifestBeside(location), location])
        const directory = yield* Effect.tryPromise({
          try: () => mkdtemp(join(tmpdir(), `${name}-`)),
          catch: (error) => new OperationFailed({ message: `cannot make a scratch directory: ${String(error)}` })
        })
        const scratch: Scratch = { name: directory, discard: Effect.promise(() => rm(directory, { recursive: true, force: true })) }
        made(scratch)
        yield* quietly(restoreTreeCommand(location, directory))
        return { scratch } satisfies Restored
      }
      case "table": {
        const scratch: Scratch = { name, discard: deleteTable(name) }
        made(scratch)
        yield* quietly(restoreTableCommand(location, name))
        return { scratch } satisfies Restored
      }
      case "image": {
        const restored = yield* restoreImage(location, { name })
        const scratch: Scratch = { name: restored.imageId, discard: Effect.asVoid(deleteImage(restored.imageId)) }
        made(scratch)
        return { scratch } satisfies Restored
      }
      case "database": {
        // Each dumped database goes into a scratch database of its own; all of them are dropped.
        const databases: Array<{ readonly name: string; readonly drop: Scratch["discard"] }> = []
        const scratch: Scratch = {
          name: `${name.replaceAll("-", "_")}_*`,
          discard: Effect.forEach(databases, (database) => database.drop, { discard: true })
        }
        made(scratch)
        const restored = yield* restoreDumpToScratch(location, options.scratchDatabases, name.replaceAll("-", "_"), (database, drop) => void databases.push({ name: database, drop }))
        return { scratch, bytes: restored.sqlBytes } satisfies Restored
      }
    }
  }).pipe(Effect.provide(Kms.Live))

/** A failure as the drill records it: the same words the CLI would print, on one line. */
const reasonOf = (error: CliError): string => describeError(error).text.replace(/\s*\n\s*/g, "; ")

/**
 * One restore drill: the artifact restored into scratch (a snapshot, a table, a directory, an
 * AMI), verified against its manifest by the restore, then the scratch deleted whatever happened.
 * The RTO is the seconds from the start (cold storage retrieval included) until the restored
 * copy was verified. Never fails: every outcome is a record.
 */
export const runDrill = (candidate: DrillCandidate, options: DrillOptions) =>
  Effect.gen(function* () {
    const startedAt = yield* Clock.currentTimeMillis
    const artifact = s3Url(candidate.location)
    const base = { resourceArn: candidate.resourceArn, recoveryPoint: candidate.recoveryPoint, artifact, startedAt }
    const target = drillTargetOf(candidate.location)
    if (Either.isLeft(target)) {
      const skipped: DrillRecord = { ...base, target: "directory", result: "skipped", reason: target.left, scratchDeleted: true }
      return skipped
    }
    if (target.right === "database" && options.scratchDatabases.length === 0) {
      const skipped: DrillRecord = { ...base, target: "database", result: "skipped", reason: "a dump is drilled on a scratch database server, and none was given (--scratch-database)", scratchDeleted: true }
      return skipped
    }
    let scratch: Scratch | undefined
    const restored = yield* Effect.either(
      restoreInto(target.right, candidate.location, scratchName(startedAt), options, (made) => void (scratch = made)).pipe(
        // Interrupted (a signal, a timeout) or a defect: the drill records nothing, but its scratch still goes.
        // (A failure is recorded below, and the scratch deleted there.)
        Effect.onExit((exit) =>
          Exit.isSuccess(exit) || Cause.isFailure(exit.cause) ? Effect.void : Effect.suspend(() => (scratch === undefined ? Effect.void : Effect.ignore(scratch.discard)))
        )
      )
    )
    const verifiedAt = yield* Clock.currentTimeMillis
    const made = scratch as Scratch | undefined
    const deletion = made === undefined ? Either.right(undefined) : yield* Effect.either(made.discard)
    const scratchFields = {
      ...(made === undefined ? {} : { scratch: made.name }),
      scratchDeleted: Either.isRight(deletion)
    }
    if (Either.isLeft(deletion)) yield* Effect.logWarning(`the drill's scratch ${made?.name ?? ""} could not be deleted: ${deletion.left.message}`)
    const record: DrillRecord = Either.isRight(restored)
      ? {
          ...base,
          target: target.right,
          result: "passed",
          rtoSeconds: Math.round((verifiedAt - startedAt) / 100) / 10,
          ...(restored.right.bytes === undefined ? {} : { bytes: restored.right.bytes }),
          ...scratchFields
        }
      : { ...base, target: target.right, result: "failed", reason: reasonOf(restored.left), ...scratchFields }
    return record
  })
