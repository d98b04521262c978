/**
 * `npm run burst -- [count]`: a burst of recovery points (1000 unless told) archived by the
 * running services on the emulator, as AWS Backup would send them at the end of a large plan.
 * Each is the smallest snapshot that still takes the whole path: one 512 KiB block of a 1 GiB
 * volume, archived in direct mode (restorer hand-off, streamer read, compress, upload, read-back)
 * and reported (the reporter's outcome row). The events go out ten to a PutEvents call, as fast
 * as the emulator takes them, after one warm-up recovery point that is not counted.
 *
 * It requires every recovery point archived exactly once (one archive step, succeeded, one
 * Archive Completed on the bus, one report row) and every DLQ empty, and exits non-zero if not.
 * It prints the throughput and each hop's latency from the ledger's times: event to claim (the
 * send to the step's startedAt), claim to finish (startedAt to finishedAt) and finish to report
 * (finishedAt to the reporter's recordedAt), at p50, p99 and max; and the CPU each process used
 * during the burst, since the emulator and the services share the same cores.
 */
import { execFileSync } from "node:child_process"
import { randomBytes } from "node:crypto"
import { existsSync, readFileSync, readdirSync } from "node:fs"
import { join } from "node:path"
import { ScanCommand, type AttributeValue } from "@aws-sdk/client-dynamodb"
import { PutEventsCommand, type PutEventsRequestEntry } from "@aws-sdk/client-eventbridge"
import { unmarshall } from "@aws-sdk/util-dynamodb"
import { Effect, Either, Schema } from "effect"
import { DynamoDb, EventBridge, awsCall } from "@backup-actions/aws"
import type { PolicyDocument, ServiceName } from "@backup-actions/config"
import { DLQ_REASON_ATTRIBUTE } from "@backup-actions/consumer"
import { ArchiveCompleted, RecoveryPointStateChange } from "@backup-actions/contracts"
import { EMULATOR_ACCOUNT, EMULATOR_REGION, localStateDir, messagesIn, receiveMessages, tapBus } from "@backup-actions/local"
import { RecordedOutcome, daysBetween, outcomeDayPartition } from "@backup-actions/reports"
import { reporterProcess } from "@backup-actions/reporter"
import { restorerProcess } from "@backup-actions/restorer"
import { streamerProcess } from "@backup-actions/streamer"
import { isSettled, settledTwice, snapshotArn, volumeArn, waitForStep } from "./backup-events"
import { sleep, waitFor } from "./fault-harness"
import { seconds, summarizeLatencies, type LatencySummary } from "./latency-summary"
import { table } from "./report"
import { EBS_BLOCK, putBlocksAsSnapshot } from "./snapshot-blocks"
import { SERVICE_NODE_FLAGS, startLocalStack, type LocalStack } from "./stack"
import { runOn, type StackServices } from "./test-support"

const DEFAULT_COUNT = 1000
const VAULT = "burst"
const VOLUME_ID = "vol-0b0a57000000000000"
const ARCHIVE_ACTION = "archive:direct"
/** The services on the path: the restorer decides the plan and hands it on, the streamer archives, the reporter records. */
const SERVICES: ReadonlyArray<ServiceName> = ["restorer", "streamer", "reporter"]
const CONCURRENCY: Readonly<Record<string, number | undefined>> = {
  restorer: restorerProcess.options.concurrency,
  streamer: streamerProcess.options.concurrency,
  reporter: reporterProcess.options.concurrency
}
/** PutEvents takes at most ten entries a call. */
const EVENTS_PER_CALL = 10
const PUTS_IN_FLIGHT = 4
const SNAPSHOT_WRITES_IN_FLIGHT = 8
/** How often the ledger is read while waiting (a whole-table scan, which costs the emulator too). */
const POLL_MS = 10_000
/** After everything settled, the time a late duplicate would need to show on the bus or in a DLQ. */
const SETTLE_MS = 5_000
/**
 * A generous bound, scaled to the count (the baseline archived and reported 100 in 81 s; on
 * busy shared cores a tiny archive has taken 10 s and more), unless BURST_TIMEOUT_SECONDS sets
 * it. The wait also ends when no recovery point settles for STALL_MS.
 */
const timeoutMsFor = (count: number): number => {
  const configured = Number(process.env["BURST_TIMEOUT_SECONDS"])
  return (Number.isFinite(configured) && configured > 0 ? configured : 120 + 10 * count) * 1000
}
const STALL_MS = 5 * 60_000

const policy: PolicyDocument = {
  rules: [{ name: "burst-direct", match: { resourceTypes: ["EBS"], vaults: [VAULT] }, archive: { mode: "direct", compression: "zstd", deleteSourceAfterVerify: false } }]
}

const say = (text: string): void => {
  process.stdout.write(`${text}\n`)
}

const parseCount = (argument: string | undefined): number => {
  if (argument === undefined) return DEFAULT_COUNT
  const value = Number(argument)
  if (!Number.isInteger(value) || value < 1) {
    process.stderr.write(`usage: npm run burst -- [count], a positive integer (${DEFAULT_COUNT} unless given); got "${argument}"\n`)
    process.exit(2)
  }
  return value
}

/**
 * AWS Backup's "Recovery Point State Change" for a completed snapshot, on the default bus, as
 * `sendRecoveryPointEvent` (libs/local) puts it one at a time; here ten go in one call.
 */
const recoveryPointEntry = (snapshotId: string, now: Date): PutEventsRequestEntry => ({
  EventBusName: "default",
  Source: RecoveryPointStateChange.source,
  DetailType: RecoveryPointStateChange.detailType,
  Resources: [snapshotArn(snapshotId)],
  Detail: JSON.stringify({
    backupVaultName: VAULT,
    backupVaultArn: `arn:aws:backup:${EMULATOR_REGION}:${EMULATOR_ACCOUNT}:backup-vault:${VAULT}`,
    creationDate: now.toISOString(),
    iamRoleArn: `arn:aws:iam::${EMULATOR_ACCOUNT}:role/service-role/AWSBackupDefaultServiceRole`,
    resourceType: "EBS",
    resourceArn: volumeArn(VOLUME_ID),
    status: "COMPLETED",
    isEncrypted: "false",
    storageClass: "WARM",
    completionDate: now.toISOString()
  })
})

/** Puts up to ten events in one call; returns when each was sent. A refused entry fails the run: it was never sent. */
const sendBatch = (snapshotIds: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const events = yield* EventBridge
    const sentAt = Date.now()
    const now = new Date(sentAt)
    const result = yield* awsCall("events:PutEvents", (abortSignal) =>
      events.send(new PutEventsCommand({ Entries: snapshotIds.map((snapshotId) => recoveryPointEntry(snapshotId, now)) }), { abortSignal })
    )
    if ((result.FailedEntryCount ?? 0) > 0) {
      const refusal = result.Entries?.find((entry) => entry.EventId === undefined)?.ErrorMessage ?? "unknown"
      return yield* Effect.dieMessage(`PutEvents refused ${String(result.FailedEntryCount)} of ${snapshotIds.length} events: ${refusal}`)
    }
    return snapshotIds.map((snapshotId) => [snapshotArn(snapshotId), sentAt] as const)
  })

/** Every item of the ledger table, read consistently, every page. */
const scanLedger = (ledgerTable: string) =>
  Effect.gen(function* () {
    const dynamodb = yield* DynamoDb
    const items: Array<Record<string, unknown>> = []
    let start: Record<string, AttributeValue> | undefined
    do {
      const page = yield* awsCall("dynamodb:Scan", (abortSignal) =>
        dynamodb.send(new ScanCommand({ TableName: ledgerTable, ConsistentRead: true, ...(start === undefined ? {} : { ExclusiveStartKey: start }) }), { abortSignal })
      )
      for (const item of page.Items ?? []) items.push(unmarshall(item))
      start = page.LastEvaluatedKey
    } while (start !== undefined)
    return items
  })

const decodeRecorded = Schema.decodeUnknownEither(RecordedOutcome)

/** What the ledger says about the burst's recovery points: their archive steps and the reporter's rows for them. */
interface LedgerView {
  /** The archive step of each recovery point. */
  readonly steps: ReadonlyMap<string, Record<string, unknown>>
  /** Archive steps of any mode, by recovery point (exactly one each is required). */
  readonly archiveSteps: ReadonlyMap<string, number>
  /** The reporter's rows of each recovery point's archive outcome. */
  readonly reported: ReadonlyMap<string, ReadonlyArray<RecordedOutcome>>
}

const readLedger = (ledgerTable: string, days: ReadonlyArray<string>) =>
  Effect.map(scanLedger(ledgerTable), (items): LedgerView => {
    const partitions = new Set(days.map(outcomeDayPartition))
    const steps = new Map<string, Record<string, unknown>>()
    const archiveSteps = new Map<string, number>()
    const reported = new Map<string, Array<RecordedOutcome>>()
    for (const item of items) {
      const pk = String(item["pk"])
      const sk = String(item["sk"])
      if (partitions.has(pk)) {
        const row = decodeRecorded(item)
        if (Either.isRight(row) && row.right.entry.action === ARCHIVE_ACTION) {
          reported.set(row.right.entry.recoveryPoint, [...(reported.get(row.right.entry.recoveryPoint) ?? []), row.right])
        }
      } else if (sk.startsWith("archive:")) {
        archiveSteps.set(pk, (archiveSteps.get(pk) ?? 0) + 1)
        if (sk === ARCHIVE_ACTION) steps.set(pk, item)
      }
    }
    return { steps, archiveSteps, reported }
  })

/** CPU seconds (user and system, with reaped children) a process used so far; none once it is gone. */
const clockTicks = Number(execFileSync("getconf", ["CLK_TCK"], { timeout: 5_000 }).toString().trim()) || 100
const cpuSecondsOf = (pid: number | undefined): number | undefined => {
  if (pid === undefined) return undefined
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
    // The fields after the command's closing parenthesis start at field 3 (state); utime, stime, cutime, cstime are 14 to 17.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ").map(Number)
    return ((fields[11] ?? 0) + (fields[12] ?? 0) + (fields[13] ?? 0) + (fields[14] ?? 0)) / clockTicks
  } catch {
    return undefined
  }
}

/** The whole machine's busy and total CPU seconds so far, every core. */
const machineCpu = (): { readonly busy: number; readonly total: number } => {
  const ticks = (readFileSync("/proc/stat", "utf8").split("\n")[0] ?? "").trim().split(/\s+/).slice(1).map(Number)
  const total = ticks.slice(0, 8).reduce((sum, value) => sum + value, 0)
  const idle = (ticks[3] ?? 0) + (ticks[4] ?? 0)
  return { busy: (total - idle) / clockTicks, total: total / clockTicks }
}

/** The emulator's process (moto_server on its port): it is started by the local stack, which does not say its id. */
const emulatorPid = (port: number): number | undefined => {
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const argv = readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0")
      if (argv.some((arg) => arg.endsWith("moto_server")) && argv.includes(String(port))) return Number(entry)
    } catch {
      // the process ended while the list was read
    }
  }
  return undefined
}

interface CpuSample {
  readonly at: number
  readonly processes: ReadonlyMap<string, number | undefined>
  readonly machine: { readonly busy: number; readonly total: number }
}

const sampleCpu = (pids: ReadonlyMap<string, number | undefined>): CpuSample => {
  const processes = new Map<string, number | undefined>([...pids].map(([name, pid]) => [name, cpuSecondsOf(pid)]))
  const own = process.cpuUsage()
  processes.set("this process (forwarding leg, sender, ledger reads)", (own.user + own.system) / 1e6)
  return { at: Date.now(), processes, machine: machineCpu() }
}

/** When the streamer's log says each snapshot's archive reached a phase, as in bench.ts's direct-mode row. */
interface StreamerPhases {
  readonly started?: number
  readonly read?: number
  readonly verified?: number
  readonly published?: number
}

/**
 * The phases inside claim to finish, from the streamer's log lines (the ledger keeps only the
 * step's start and end): "archiving <snapshot> directly", "<snapshot>: 100% read" (the upload's
 * last part), "content verified" (the read-back) and "published Archive Completed".
 */
const streamerPhases = (logFile: string): ReadonlyMap<string, StreamerPhases> => {
  const phases = new Map<string, StreamerPhases>()
  if (!existsSync(logFile)) return phases
  for (const line of readFileSync(logFile, "utf8").split("\n")) {
    const snapshotId = /snapshotId=(snap-[0-9a-f]+)/.exec(line)?.[1]
    const stamp = /timestamp=(\S+)/.exec(line)?.[1]
    if (snapshotId === undefined || stamp === undefined) continue
    const at = Date.parse(stamp)
    const phase = line.includes(`archiving ${snapshotId} directly`)
      ? "started"
      : line.includes(`${snapshotId}: 100% read`)
        ? "read"
        : line.includes("content verified")
          ? "verified"
          : line.includes("published Archive Completed")
            ? "published"
            : undefined
    if (phase !== undefined) phases.set(snapshotId, { ...phases.get(snapshotId), [phase]: at })
  }
  return phases
}

const between = (from: number | undefined, to: number | undefined): number | undefined => (from === undefined || to === undefined ? undefined : to - from)

const hopRow = (name: string, summary: LatencySummary | undefined): Array<string> =>
  summary === undefined ? [name, "-", "-", "-", "0"] : [name, seconds(summary.p50), seconds(summary.p99), seconds(summary.max), String(summary.count)]

/** Up to ten dead letters of a DLQ with their reasons, left where they are. */
const deadLetterReasons = (local: LocalStack, queueUrl: string) =>
  runOn(
    local,
    Effect.map(receiveMessages(queueUrl), (messages) =>
      messages.map((message) => message.MessageAttributes?.[DLQ_REASON_ATTRIBUTE]?.StringValue ?? `(no reason) ${(message.Body ?? "").slice(0, 200)}`)
    )
  )

const main = async (): Promise<boolean> => {
  const count = parseCount(process.argv[2])
  const local = await startLocalStack({ name: "burst", policy, services: SERVICES, startServices: false })
  const run = <A, E>(effect: Effect.Effect<A, E, StackServices>) => runOn(local, effect)
  const ledgerTable = local.stack.ledgerTable
  try {
    const tap = await run(tapBus(local.stack.busName, { source: [ArchiveCompleted.source], "detail-type": [ArchiveCompleted.detailType] }, "burst-outcomes"))

    say(`writing ${count + 1} one-block snapshots (one for the warm-up)...`)
    const block = randomBytes(EBS_BLOCK)
    let written = 0
    const seedStarted = Date.now()
    const snapshotIds = await run(
      Effect.forEach(
        Array.from({ length: count + 1 }, (_, index) => index),
        (index) =>
          putBlocksAsSnapshot(new Map([[0, block]]), `burst ${index}`).pipe(
            Effect.tap(() =>
              Effect.sync(() => {
                written += 1
                if (written % 100 === 0) say(`  ${written}/${count + 1} written`)
              })
            )
          ),
        { concurrency: SNAPSHOT_WRITES_IN_FLIGHT }
      )
    )
    say(`  ${snapshotIds.length} snapshots in ${((Date.now() - seedStarted) / 1000).toFixed(1)} s`)
    const [warmUp, ...burst] = snapshotIds
    if (warmUp === undefined) throw new Error("no snapshot was written")

    const workers = new Map(SERVICES.map((service) => [service, local.startService(service)] as const))
    const daysOfRun = () => daysBetween(Date.now() - 3_600_000, Date.now() + 3_600_000)
    say("warm-up: one recovery point archived and reported before the burst, so that the services are up and past their first message...")
    const warmUpStarted = Date.now()
    await run(sendBatch([warmUp]))
    await run(waitForStep(ledgerTable, snapshotArn(warmUp), ARCHIVE_ACTION, "5 minutes"))
    await waitFor("the warm-up's report row", async () => ((await run(readLedger(ledgerTable, daysOfRun()))).reported.has(snapshotArn(warmUp)) ? true : undefined), 120_000, 1_000)
    say(`  warm-up archived and reported in ${((Date.now() - warmUpStarted) / 1000).toFixed(1)} s`)

    const pids = new Map<string, number | undefined>([
      ["emulator (moto_server)", emulatorPid(local.emulator.port)],
      ...SERVICES.map((service) => [`${service} (concurrency ${String(CONCURRENCY[service] ?? 1)})`, workers.get(service)?.pid] as const)
    ])
    const cpuBefore = sampleCpu(pids)

    say(`burst: sending ${burst.length} events, ${EVENTS_PER_CALL} to a PutEvents call, ${PUTS_IN_FLIGHT} calls at once...`)
    const sentAt = new Map<string, number>()
    const batches = Array.from({ length: Math.ceil(burst.length / EVENTS_PER_CALL) }, (_, index) => burst.slice(index * EVENTS_PER_CALL, (index + 1) * EVENTS_PER_CALL))
    const firstSent = Date.now()
    await run(
      Effect.forEach(batches, (batch) => Effect.map(sendBatch(batch), (sent) => sent.forEach(([arn, at]) => sentAt.set(arn, at))), {
        concurrency: PUTS_IN_FLIGHT,
        discard: true
      })
    )
    const sendSeconds = (Date.now() - firstSent) / 1000
    say(`  ${sentAt.size} sent in ${sendSeconds.toFixed(1)} s`)

    const arns = burst.map(snapshotArn)
    const timeoutMs = timeoutMsFor(count)
    let latest: LedgerView | undefined
    let previous: LedgerView | undefined
    let lastSettled = -1
    let lastProgressAt = Date.now()
    const settled = await waitFor(
      `${count} recovery points archived and reported`,
      async () => {
        previous = latest
        latest = await run(readLedger(ledgerTable, daysOfRun()))
        const view = latest
        const done = arns.filter((arn) => isSettled(view.steps.get(arn))).length
        const reported = arns.filter((arn) => view.reported.has(arn)).length
        const running = arns.filter((arn) => view.steps.get(arn)?.["status"] === "running").length
        say(`  ${((Date.now() - firstSent) / 1000).toFixed(0)} s: ${done}/${count} settled, ${reported}/${count} reported, ${running} running`)
        if (done !== lastSettled) {
          lastSettled = done
          lastProgressAt = Date.now()
        } else if (Date.now() - lastProgressAt > STALL_MS) {
          throw new Error(`no recovery point settled for ${STALL_MS / 60_000} minutes`)
        }
        return done === count && reported === count ? true : undefined
      },
      timeoutMs,
      POLL_MS
    ).catch((error: unknown) => {
      say(`  stopped waiting: ${error instanceof Error ? error.message : String(error)}`)
      return false
    })
    const cpuAfter = sampleCpu(pids)

    // A late duplicate (a redelivered event, a second announcement) would show by now. Then the
    // services stop, so that the ledger, the bus tap and the queues are read as of one moment
    // (after a timeout they would go on archiving between those reads).
    await sleep(SETTLE_MS)
    for (const service of SERVICES) await local.stopService(service)
    previous = latest
    const final = await run(readLedger(ledgerTable, daysOfRun()))
    const outcomeEvents = new Map<string, number>()
    for (const body of await run(tap.drain(1))) {
      const event = JSON.parse(body) as { readonly detail?: { readonly correlationId?: string } }
      const arn = event.detail?.correlationId ?? ""
      outcomeEvents.set(arn, (outcomeEvents.get(arn) ?? 0) + 1)
    }
    const queues = [
      ...Object.entries(local.stack.queues).map(([service, queue]) => ({ name: service, url: queue.url, deadLetterUrl: queue.deadLetterUrl })),
      { name: "forwarding leg", url: local.stack.backupEventsQueue.url, deadLetterUrl: local.stack.backupEventsQueue.deadLetterUrl }
    ]
    const dlqs = await Promise.all(
      queues.map(async (queue) => ({ ...queue, deadLetters: await run(messagesIn(queue.deadLetterUrl)), left: await run(messagesIn(queue.url)) }))
    )

    // Each recovery point against the requirements, and its hops from the ledger's times.
    const problems: Array<string> = []
    const hops = { eventToClaim: [] as Array<number>, claimToFinish: [] as Array<number>, finishToReport: [] as Array<number>, eventToReport: [] as Array<number> }
    const inside = { claimToStart: [] as Array<number>, readAndUpload: [] as Array<number>, readBack: [] as Array<number>, verifiedToFinish: [] as Array<number>, finishToPublished: [] as Array<number>, publishedToReport: [] as Array<number> }
    const phases = streamerPhases(join(localStateDir(), "logs", "burst-streamer.log"))
    const retried: Array<string> = []
    let exactlyOnce = 0
    let lastRecorded = 0
    let lastFinished = 0
    for (const arn of arns) {
      const step = final.steps.get(arn)
      const rows = final.reported.get(arn) ?? []
      const events = outcomeEvents.get(arn) ?? 0
      const attempts = Number(step?.["attempts"] ?? 0)
      const why: Array<string> = []
      if (step === undefined) why.push("no archive step")
      else if (step["status"] !== "succeeded") why.push(`archive step ${String(step["status"])}: ${String(step["reason"] ?? "")}`)
      else if (!settledTwice(previous?.steps.get(arn), step)) why.push("archive step not settled (changed between the last two reads, or unannounced)")
      if ((final.archiveSteps.get(arn) ?? 0) > 1) why.push(`${String(final.archiveSteps.get(arn))} archive steps`)
      if (events !== 1) why.push(`${events} Archive Completed events on the bus`)
      if (rows.length !== 1) why.push(`${rows.length} report rows`)
      else if (rows[0]?.entry.status !== "succeeded") why.push(`report row ${String(rows[0]?.entry.status)}`)
      if (attempts > 1) retried.push(`${arn}: ${attempts} attempts, ${events} outcome event(s)`)
      if (why.length === 0) exactlyOnce += 1
      else problems.push(`${arn}: ${why.join("; ")}`)
      const sent = sentAt.get(arn)
      const startedAt = Number(step?.["startedAt"] ?? Number.NaN)
      const finishedAt = Number(step?.["finishedAt"] ?? Number.NaN)
      const recordedAt = rows[0]?.recordedAt ?? Number.NaN
      if (sent !== undefined && Number.isFinite(startedAt)) hops.eventToClaim.push(startedAt - sent)
      if (Number.isFinite(startedAt) && Number.isFinite(finishedAt)) hops.claimToFinish.push(finishedAt - startedAt)
      if (Number.isFinite(finishedAt) && Number.isFinite(recordedAt)) hops.finishToReport.push(recordedAt - finishedAt)
      if (sent !== undefined && Number.isFinite(recordedAt)) hops.eventToReport.push(recordedAt - sent)
      if (Number.isFinite(recordedAt)) lastRecorded = Math.max(lastRecorded, recordedAt)
      const phase = phases.get(arn.slice(arn.lastIndexOf("/") + 1)) ?? {}
      const steps = [
        [inside.claimToStart, between(Number.isFinite(startedAt) ? startedAt : undefined, phase.started)],
        [inside.readAndUpload, between(phase.started, phase.read)],
        [inside.readBack, between(phase.read, phase.verified)],
        [inside.verifiedToFinish, between(phase.verified, Number.isFinite(finishedAt) ? finishedAt : undefined)],
        [inside.finishToPublished, between(Number.isFinite(finishedAt) ? finishedAt : undefined, phase.published)],
        [inside.publishedToReport, between(phase.published, Number.isFinite(recordedAt) ? recordedAt : undefined)]
      ] as const
      for (const [list, value] of steps) if (value !== undefined) list.push(value)
      if (Number.isFinite(finishedAt)) lastFinished = Math.max(lastFinished, finishedAt)
    }
    const deadLetters = dlqs.reduce((sum, queue) => sum + queue.deadLetters, 0)

    const wallMs = (lastRecorded > 0 ? lastRecorded : Date.now()) - firstSent
    const reportedCount = arns.filter((arn) => final.reported.has(arn)).length
    const archivedMs = (lastFinished > 0 ? lastFinished : Date.now()) - firstSent
    say("")
    say(
      table(
        ["recovery points", "sent in", "archived by", "reported by (wall)", "reported", "throughput", "attempts > 1"],
        [
          [
            String(count),
            `${sendSeconds.toFixed(1)} s`,
            `${(archivedMs / 1000).toFixed(1)} s`,
            `${(wallMs / 1000).toFixed(1)} s`,
            String(reportedCount),
            `${(reportedCount / (wallMs / 1000)).toFixed(2)} /s`,
            String(retried.length)
          ]
        ]
      )
    )
    say("")
    say(
      table(
        ["hop (from the ledger's times)", "p50 s", "p99 s", "max s", "of"],
        [
          hopRow("event to claim", summarizeLatencies(hops.eventToClaim)),
          hopRow("claim to finish", summarizeLatencies(hops.claimToFinish)),
          hopRow("  claim to archiving (streamer log)", summarizeLatencies(inside.claimToStart)),
          hopRow("  read and upload", summarizeLatencies(inside.readAndUpload)),
          hopRow("  read-back and verify", summarizeLatencies(inside.readBack)),
          hopRow("  verified to finish", summarizeLatencies(inside.verifiedToFinish)),
          hopRow("finish to report", summarizeLatencies(hops.finishToReport)),
          hopRow("  finish to PutEvents answered (streamer log)", summarizeLatencies(inside.finishToPublished)),
          hopRow("  PutEvents answered to recorded (< 0: delivered first)", summarizeLatencies(inside.publishedToReport)),
          hopRow("event to report (end to end)", summarizeLatencies(hops.eventToReport))
        ]
      )
    )
    say("")
    const busySeconds = cpuAfter.machine.busy - cpuBefore.machine.busy
    const spanSeconds = (cpuAfter.at - cpuBefore.at) / 1000
    const cores = (cpuAfter.machine.total - cpuBefore.machine.total) / Math.max(0.001, spanSeconds)
    const cpuRows = [...cpuAfter.processes].map(([name, after]) => {
      const before = cpuBefore.processes.get(name)
      const used = after === undefined || before === undefined ? undefined : after - before
      return [name, used === undefined ? "-" : used.toFixed(1), used === undefined ? "-" : `${((used / spanSeconds) * 100).toFixed(0)}%`]
    })
    const ours = [...cpuAfter.processes].reduce((sum, [name, after]) => sum + ((after ?? 0) - (cpuBefore.processes.get(name) ?? 0)), 0)
    cpuRows.push(["everything else on the machine", Math.max(0, busySeconds - ours).toFixed(1), `${((Math.max(0, busySeconds - ours) / spanSeconds) * 100).toFixed(0)}%`])
    cpuRows.push(["machine busy (all cores)", busySeconds.toFixed(1), `${((busySeconds / spanSeconds) * 100).toFixed(0)}% of ${cores.toFixed(0)} cores`])
    say(`CPU during the burst (${spanSeconds.toFixed(1)} s, from the first send until all settled; % of one core):`)
    say(table(["process", "CPU s", "of one core"], cpuRows))
    say("")
    say(table(["queue", "DLQ", "left in queue"], dlqs.map((queue) => [queue.name, String(queue.deadLetters), String(queue.left)])))
    for (const queue of dlqs.filter((entry) => entry.deadLetters > 0)) {
      for (const reason of await deadLetterReasons(local, queue.deadLetterUrl)) say(`  ${queue.name} DLQ: ${reason}`)
    }
    if (retried.length > 0) {
      say(`\n${retried.length} recovery point(s) needed more than one attempt (allowed with exactly one outcome):`)
      for (const line of retried.slice(0, 10)) say(`  ${line}`)
    }
    if (problems.length > 0) {
      say(`\n${problems.length} recovery point(s) not archived exactly once:`)
      for (const line of problems.slice(0, 20)) say(`  ${line}`)
    }
    say("")
    say(`service node flags ${SERVICE_NODE_FLAGS.join(" ")}; consumer concurrency ${SERVICES.map((service) => `${service} ${String(CONCURRENCY[service] ?? 1)}`).join(", ")}`)
    say(`burst: ${sentAt.size} sent, ${exactlyOnce} archived exactly once, DLQ ${deadLetters}`)
    return settled === true && sentAt.size === count && exactlyOnce === count && deadLetters === 0
  } finally {
    await local.stop()
  }
}

main().then(
  (passed) => {
    if (!passed) process.exitCode = 1
  },
  (error: unknown) => {
    process.stderr.write(`burst failed: ${error instanceof Error ? error.message : String(error)}\n`)
    process.exitCode = 1
  }
)
