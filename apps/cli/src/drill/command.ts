import { Clock, Console, Effect, Either, Layer } from "effect"
import { DynamoDb } from "@backup-actions/aws"
import { parsePolicy, periodMs } from "@backup-actions/config"
import { DrillBook, type DrillRecord } from "@backup-actions/ledger"
import { RecordedOutcome, dayOf, daysBetween, outcomeDayPartition, readDayRows } from "@backup-actions/reports"
import type { Command } from "../args"
import { ColdReads } from "../cold-storage"
import { CheckFailed, OperationFailed, UsageError } from "../errors"
import { s3Url } from "../s3-url"
import { requireName } from "../stack"
import { dueDrills, newestArtifacts, type DrillCandidate } from "./plan"
import { runDrill } from "./run"
import { drillTable } from "./table"

type DrillCommand = Extract<Command, { readonly _tag: "Drill" }>

/** The drill period: the command line's, else the policy's drill.every; a usage error names both places when neither says. */
const periodOf = (command: DrillCommand, environment: Readonly<Record<string, string | undefined>>) =>
  Effect.gen(function* () {
    if (command.every !== undefined) return periodMs(command.every)
    const text = environment["BACKUP_ACTIONS_POLICY"]
    if (text === undefined || text.trim() === "") {
      return yield* new UsageError({ message: "no drill period: pass --every <period> (e.g. 7d), or set BACKUP_ACTIONS_POLICY to a policy with drill.every", command: "drill" })
    }
    const policy = parsePolicy(text, "BACKUP_ACTIONS_POLICY")
    if (Either.isLeft(policy)) return yield* new UsageError({ message: `BACKUP_ACTIONS_POLICY: ${policy.left.reason}`, command: "drill" })
    if (policy.right.drill === undefined) return yield* new UsageError({ message: "the policy asks for no drills (no drill.every): pass --every <period>", command: "drill" })
    return periodMs(policy.right.drill.every)
  })

/** The artifacts to drill now: the one named, or each resource's newest whose last drill is due. */
const candidatesOf = (command: DrillCommand, environment: Readonly<Record<string, string | undefined>>, book: typeof DrillBook.Service) =>
  Effect.gen(function* () {
    const now = yield* Clock.currentTimeMillis
    if (command.artifact !== undefined) {
      const named: DrillCandidate = {
        resourceArn: command.resource ?? s3Url(command.artifact),
        recoveryPoint: command.resource ?? s3Url(command.artifact),
        location: command.artifact,
        time: new Date(now).toISOString()
      }
      return [named]
    }
    const everyMs = yield* periodOf(command, environment)
    const dynamodb = yield* DynamoDb
    const ledgerTable = yield* requireName("ledgerTable")
    const rows = yield* readDayRows(
      dynamodb,
      ledgerTable,
      { partitionOf: outcomeDayPartition, schema: RecordedOutcome, corrupt: (key, reason) => new OperationFailed({ message: `the reporter's row ${key} cannot be read: ${reason}` }) },
      daysBetween(now - (command.days - 1) * 86_400_000, now, command.days),
      undefined
    )
    const latest = yield* book.latest.pipe(Effect.catchTag("DrillRecordInvalid", (error) => new OperationFailed({ message: `the drill record ${error.key} cannot be read: ${error.reason}` })))
    return dueDrills(
      newestArtifacts(rows.map((row) => row.entry)),
      latest,
      everyMs,
      now
    )
  })

/**
 * `drill`: every due artifact restored into scratch and verified, one at a time (a drill is a
 * full restore: its cost and its load are one restore's), each recorded as it ends. Then the
 * table of every resource's last drill. A failed drill fails the command once all have run.
 */
export const drillCommand = (command: DrillCommand, environment: Readonly<Record<string, string | undefined>>, stderr: NodeJS.WritableStream) =>
  Effect.gen(function* () {
    const ledgerTable = yield* requireName("ledgerTable")
    const run = Effect.gen(function* () {
      const book = yield* DrillBook
      const candidates = yield* candidatesOf(command, environment, book)
      if (candidates.length === 0) yield* Console.error(`no drill is due (today ${dayOf(yield* Clock.currentTimeMillis)})`)
      const ran: Array<DrillRecord> = []
      for (const [index, candidate] of candidates.entries()) {
        yield* Console.error(`drill ${index + 1}/${candidates.length}: ${s3Url(candidate.location)} (${candidate.resourceArn})`)
        const drill = yield* runDrill(candidate, { scratchDatabases: command.scratchDatabases })
        yield* book.record(drill)
        ran.push(drill)
        yield* Console.error(`  ${drill.result}${drill.rtoSeconds === undefined ? "" : ` in ${drill.rtoSeconds} s`}${drill.reason === undefined ? "" : `: ${drill.reason}`}`)
      }
      const latest = yield* book.latest.pipe(Effect.orElseSucceed(() => ran))
      yield* Console.log(command.json ? JSON.stringify({ ran, latest }, null, 2) : drillTable(latest))
      const failed = ran.filter((drill) => drill.result === "failed")
      if (failed.length > 0) {
        return yield* new CheckFailed({
          summary: `${failed.length} of ${ran.length} drills failed:`,
          problems: failed.map((drill) => `${drill.artifact} (${drill.resourceArn}): ${drill.reason ?? "no reason given"}`)
        })
      }
    })
    yield* run.pipe(Effect.provide(Layer.merge(DrillBook.onTable(ledgerTable), ColdReads.layer(command.tier, "drill", stderr))))
  })
