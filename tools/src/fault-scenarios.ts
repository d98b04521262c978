import { execFileSync, type ChildProcess } from "node:child_process"
import { HeadObjectCommand } from "@aws-sdk/client-s3"
import { Effect } from "effect"
import { COMPRESSED_FRAME_POINT, S3, STEP_POINTS, awsCall, undefinedWhenNotFound } from "@backup-actions/aws"
import {
  FAULT_TIMING,
  clearLeftovers,
  collectEvents,
  ledgerItem,
  measure,
  mountsUnder,
  restoredVolumesLeft,
  seedDirect,
  drainQueues,
  seedVolume,
  sendEvent,
  sleep,
  startWorker,
  stopAllWorkers,
  stopWorker,
  waitFor,
  waitForExit,
  waitForParts,
  waitForSettled,
  type FaultProperties,
  type FaultWorld,
  type Subject
} from "./fault-harness"

/** What one scenario ended with: the properties, and the violations found (none: it held). */
export interface ScenarioResult extends FaultProperties {
  readonly name: string
  readonly status: string
  readonly seconds: number
  readonly violations: ReadonlyArray<string>
}

interface Scenario {
  readonly name: string
  /**
   * What the fault strikes: the step runtime (claims, leases, the ledger, publishing) or the data
   * path (uploads, tools, an archive's content, the source's deletion). The test runs the two
   * halves side by side, each in a world of its own.
   */
  readonly strikes: "runtime" | "data"
  readonly mode: "direct" | "volume"
  /** Direct mode: MiB of incompressible data, enough for the fault to land mid-upload. */
  readonly mib?: number
  /**
   * What the reason of the scenario's dead letters must say; without it, the scenario leaves none.
   * (A given-up step's every copy goes to the DLQ with the reason: a deferred duplicate too.)
   */
  readonly deadLetter?: string
  /** How the step must end. */
  readonly expect: "archived" | "failed"
  /** Drives the services and the fault, until the step settled. */
  readonly drive: (world: FaultWorld, subject: Subject, action: string) => Promise<void>
  /** Checks of its own beyond the shared properties; returns violations. */
  readonly check?: (world: FaultWorld, subject: Subject, action: string) => Promise<ReadonlyArray<string>>
}

/** Runs a worker with the failpoint until the failpoint kills it, then a plain worker until the step settles. */
const killAtPoint =
  (failpoints: string) =>
  async (world: FaultWorld, subject: Subject, action: string): Promise<void> => {
    const doomed = startWorker(world, "streamer", failpoints)
    await sendEvent(world, subject)
    await waitForExit(doomed)
    const replacement = startWorker(world, "streamer")
    await waitForSettled(world, subject, action)
    await stopWorker(replacement)
  }

/** One worker with the failpoint armed for its whole life. */
const withFailpoint =
  (failpoints: string) =>
  async (world: FaultWorld, subject: Subject, action: string): Promise<void> => {
    const worker = startWorker(world, "streamer", failpoints)
    await sendEvent(world, subject)
    await waitForSettled(world, subject, action)
    await stopWorker(worker)
  }

/** The pids of the GNU tar processes that this streamer process runs (and no other's: tests run side by side). */
const tarPidsOf = (streamer: ChildProcess): ReadonlyArray<string> => {
  try {
    return execFileSync("pgrep", ["-x", "-P", String(streamer.pid ?? 0), "tar"], { encoding: "utf8" })
      .split("\n")
      .filter((pid) => pid !== "")
  } catch {
    return []
  }
}

/** Whether an object exists at the archive's canonical key. */
const objectAt = (world: FaultWorld, key: string) =>
  world.run(
    Effect.flatMap(S3, (s3) =>
      undefinedWhenNotFound(awsCall("s3:HeadObject", (abortSignal) => s3.send(new HeadObjectCommand({ Bucket: world.local.stack.artifactBucket, Key: key }), { abortSignal })))
    )
  )

/** Volume mode runs the restorer and the streamer; the streamer's environment may carry a failpoint. */
const volumeRun = async (world: FaultWorld, subject: Subject, action: string, streamerFailpoints: string, during?: (streamer: ChildProcess) => Promise<void>) => {
  const restorer = startWorker(world, "restorer")
  const streamer = startWorker(world, "streamer", streamerFailpoints)
  await sendEvent(world, subject)
  if (during !== undefined) await during(streamer)
  await waitForSettled(world, subject, action, 240_000)
  // The restorer deletes the restored volume when it sees the outcome.
  await waitFor("the restored volume to be deleted", async () => ((await restoredVolumesLeft(world, subject)) === 0 ? true : undefined), 60_000).catch(() => undefined)
  await stopWorker(streamer)
  await stopWorker(restorer)
}

export const SCENARIOS: ReadonlyArray<Scenario> = [
  // First: its workers die at every claim, so no other scenario's stale copy may reach them.
  {
    name: "a handler that kills its worker every time",
    strikes: "runtime",
    mode: "direct",
    expect: "failed",
    deadLetter: `gave up after ${FAULT_TIMING.maxAttempts} attempts: the worker died`,
    drive: async (world, subject, action) => {
      await sendEvent(world, subject)
      // A supervisor restarts the worker whenever it dies, as ECS or systemd would.
      const deadline = Date.now() + 240_000
      for (;;) {
        const worker = startWorker(world, "streamer", `${STEP_POINTS.afterClaim}=kill`)
        const settled = await waitFor(
          "the worker to die or the step to be given up",
          async () => {
            if (worker.exitCode !== null || worker.signalCode !== null) return "died"
            const step = await ledgerItem(world, subject.recoveryPointArn, action)
            return step?.["gaveUp"] === true && step["published"] === true ? "gave-up" : undefined
          },
          120_000
        )
        if (settled === "gave-up") {
          // The message that found the step given up goes to the DLQ.
          await sleep(3_000)
          await stopWorker(worker)
          return
        }
        if (Date.now() > deadline) throw new Error("the step was never given up")
      }
    }
  },
  {
    name: "killed during an upload",
    strikes: "data",
    mode: "direct",
    mib: 120,
    expect: "archived",
    drive: async (world, subject, action) => {
      const worker = startWorker(world, "streamer")
      await sendEvent(world, subject)
      await waitForParts(world, subject, action, 1)
      await stopWorker(worker, "SIGKILL")
      const replacement = startWorker(world, "streamer")
      await waitForSettled(world, subject, action)
      await stopWorker(replacement)
    }
  },
  { name: "killed after the upload, before the ledger write", strikes: "runtime", mode: "direct", expect: "archived", drive: killAtPoint(`${STEP_POINTS.afterWork}=kill`) },
  { name: "killed after the ledger write, before publishing", strikes: "runtime", mode: "direct", expect: "archived", drive: killAtPoint(`${STEP_POINTS.afterRecord}=kill`) },
  { name: "PutEvents failing twice", strikes: "runtime", mode: "direct", expect: "archived", drive: withFailpoint("events:PutEvents=fail*2") },
  {
    // Every checksum of the upload holds (it was taken over the frame as sent); only reading the
    // archive back against the source's block checksums shows that it is not the source.
    name: "a frame made from other data than the source's",
    strikes: "data",
    mode: "direct",
    expect: "failed",
    drive: withFailpoint(`${COMPRESSED_FRAME_POINT}=corrupt*1`),
    check: async (world, subject) => {
      const outcome = (await ledgerItem(world, subject.recoveryPointArn, "archive:direct"))?.["outcome"] as Record<string, unknown> | undefined
      const reason = String(outcome?.["reason"] ?? "")
      return outcome?.["verified"] === "upload" && reason.startsWith("the archive read back differs from its source")
        ? []
        : [`the outcome says verified ${String(outcome?.["verified"])}: ${reason}`]
    }
  },
  { name: "killed after deleting the source, before recording it", strikes: "data", mode: "direct", expect: "archived", drive: killAtPoint(`${STEP_POINTS.afterSourceDeleted}=kill`) },
  {
    name: "a lost reply to the source's deletion",
    strikes: "data",
    mode: "direct",
    expect: "archived",
    // On the emulator the recovery point's deletion is the EBS DeleteSnapshot behind it (AWS
    // Backup's DeleteRecoveryPoint is checked with exact input); the request is carried out and its answer lost.
    drive: withFailpoint("ec2:DeleteSnapshot=lost-reply*1"),
    check: async (world, subject) => {
      const outcome = (await ledgerItem(world, subject.recoveryPointArn, "archive:direct"))?.["outcome"] as Record<string, unknown> | undefined
      return outcome?.["sourceDeleted"] === true && outcome["sourceDeletion"] === "deleted" ? [] : [`the outcome says sourceDeletion ${String(outcome?.["sourceDeletion"])}`]
    }
  },
  {
    name: "a lease lapsing while a second worker runs the step",
    strikes: "runtime",
    mode: "direct",
    mib: 120,
    expect: "archived",
    drive: async (world, subject, action) => {
      const stalled = startWorker(world, "streamer")
      await sendEvent(world, subject)
      await waitForParts(world, subject, action, 1)
      // The first worker stalls (a long GC pause, a frozen VM) past its lease and visibility.
      stalled.kill("SIGSTOP")
      const second = startWorker(world, "streamer")
      await waitForSettled(world, subject, action)
      stalled.kill("SIGCONT")
      // Time for the first worker to wake, find its claim gone, and stop.
      await sleep(FAULT_TIMING.leaseSeconds * 1000 + 2_000)
      await stopWorker(stalled)
      await stopWorker(second)
    },
    check: async (world, subject, action) => {
      const step = await ledgerItem(world, subject.recoveryPointArn, action)
      return Number(step?.["takeovers"] ?? 0) >= 1 ? [] : ["the ledger shows no takeover"]
    }
  },
  {
    name: "tar killed mid-archive",
    strikes: "data",
    mode: "volume",
    expect: "failed",
    drive: (world, subject, action) =>
      volumeRun(world, subject, action, "", async (streamer) => {
        // Kill tar as soon as it runs (its output waits on the upload, so it runs for seconds).
        await waitFor(
          "a running tar to kill",
          async () => {
            const pids = tarPidsOf(streamer)
            if (pids.length === 0) return undefined
            try {
              execFileSync("kill", ["-KILL", ...pids], { stdio: "pipe" })
              return true
            } catch {
              return undefined
            }
          },
          120_000,
          20
        )
      }),
    check: async (world, subject) => {
      const head = await objectAt(world, `archives/ebs/${subject.snapshotId}/volume/files.tar.zst`)
      return head === undefined ? [] : ["a truncated tar was completed at the archive's key"]
    }
  },
  (() => {
    // What the drive saw, for the check: the mounts when the streamer died, and after its replacement finished.
    let mountedAtKill = 0
    let mountedAfter: ReadonlyArray<string> = []
    const scenario: Scenario = {
      name: "the streamer killed while its filesystems are mounted",
      strikes: "data",
      mode: "volume",
      expect: "archived",
      drive: async (world, subject, action) => {
        const restorer = startWorker(world, "restorer")
        const doomed = startWorker(world, "streamer")
        await sendEvent(world, subject)
        // tar runs once the volume is attached and its filesystems are mounted: then the streamer dies, and no scope of its runs.
        await waitFor("a running tar, the volume's filesystems mounted", async () => (tarPidsOf(doomed).length > 0 ? true : undefined), 120_000, 20)
        mountedAtKill = mountsUnder(world).length
        doomed.kill("SIGKILL")
        await waitForExit(doomed)
        // Its replacement sweeps what the dead one left before it takes a message, then archives the redelivered one.
        const replacement = startWorker(world, "streamer")
        await waitForSettled(world, subject, action, 240_000)
        await waitFor("the restored volume to be deleted", async () => ((await restoredVolumesLeft(world, subject)) === 0 ? true : undefined), 60_000).catch(() => undefined)
        await stopWorker(replacement)
        await stopWorker(restorer)
        mountedAfter = mountsUnder(world)
      },
      check: () =>
        Promise.resolve([
          ...(mountedAtKill === 0 ? ["nothing was mounted when the streamer was killed: the scenario proved nothing"] : []),
          ...(mountedAfter.length === 0 ? [] : [`still mounted after the replacement finished: ${mountedAfter.join(", ")}`])
        ])
    }
    return scenario
  })(),
  {
    name: "a child process that hangs",
    strikes: "data",
    mode: "volume",
    expect: "failed",
    drive: (world, subject, action) => volumeRun(world, subject, action, "spawn:tar=hang"),
    check: async (world, subject, action) => {
      const step = await ledgerItem(world, subject.recoveryPointArn, action)
      return /tar/.test(String(step?.["reason"] ?? "")) ? [] : [`the step's reason does not name the hung tool: ${String(step?.["reason"])}`]
    }
  }
]

/** Runs one scenario on a fresh recovery point and checks every property. */
export const runScenario = async (world: FaultWorld, scenario: Scenario, index: number): Promise<ScenarioResult> => {
  const started = Date.now()
  const subject = scenario.mode === "direct" ? await seedDirect(world, `s${index}`, scenario.mib) : await seedVolume(world, `s${index}`)
  const action = scenario.mode === "direct" ? "archive:direct" : "archive:volume"
  const violations: Array<string> = []
  // The restorer decides every archive plan, a direct-mode one too (it hands it to the streamer
  // without restoring anything); volume mode starts its own restorer beside the streamer.
  const planner = scenario.mode === "direct" ? startWorker(world, "restorer") : undefined
  await scenario.drive(world, subject, action).catch((error: unknown) => violations.push(`did not settle: ${error instanceof Error ? error.message : String(error)}`))
  if (planner !== undefined) await stopWorker(planner)
  await stopAllWorkers(world)
  await collectEvents(world)
  const properties = await measure(world, subject, action)
  await drainQueues(world)
  clearLeftovers(world)
  const step = await ledgerItem(world, subject.recoveryPointArn, action)
  const status = String(step?.["status"] === "succeeded" ? "archived" : (step?.["status"] ?? "none"))
  if (properties.sourcesDeletedUnverified !== 0) violations.push("a source was deleted without a verified artifact")
  if (properties.artifactsLost !== 0) violations.push("an artifact was lost")
  if (properties.outcomeEvents !== 1) violations.push(`${properties.outcomeEvents} outcome events instead of 1`)
  if (properties.stepsLeftRunning !== 0) violations.push(`${properties.stepsLeftRunning} step(s) left running`)
  if (properties.leftovers !== 0) violations.push(`${properties.volumesLeft} restored volume(s) and ${properties.loopDevicesLeft} loop device(s) left`)
  if (properties.deadLetters !== properties.deadLettersWithReason) violations.push("a dead letter has no reason")
  if (scenario.deadLetter === undefined && properties.deadLetters !== 0) violations.push(`${properties.deadLetters} dead letter(s) instead of none`)
  if (scenario.deadLetter !== undefined && (properties.deadLetters === 0 || !properties.reasons.every((reason) => reason.includes(scenario.deadLetter ?? "")))) {
    violations.push(`the dead letters do not all say "${scenario.deadLetter}" (${properties.reasons.join("; ") || "none"})`)
  }
  if (status !== scenario.expect) violations.push(`the step ended ${status}, expected ${scenario.expect}`)
  if (scenario.check !== undefined) violations.push(...(await scenario.check(world, subject, action)))
  return { name: scenario.name, status, seconds: Math.round((Date.now() - started) / 1000), violations, ...properties }
}

/** The table the suite prints, one row per scenario, and its closing line. */
export const formatResults = (results: ReadonlyArray<ScenarioResult>): string => {
  const header = ["scenario", "step", "sources deleted unverified", "artifacts lost", "outcome events", "steps running", "leftovers", "DLQ (with reason)", "s", "held"]
  const rows = results.map((result) => [
    result.name,
    result.status,
    String(result.sourcesDeletedUnverified),
    String(result.artifactsLost),
    String(result.outcomeEvents),
    String(result.stepsLeftRunning),
    String(result.leftovers),
    `${result.deadLetters} (${result.deadLettersWithReason})`,
    String(result.seconds),
    result.violations.length === 0 ? "yes" : `NO: ${result.violations.join("; ")}`
  ])
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => (row[column] ?? "").length)))
  const line = (cells: ReadonlyArray<string>) => `| ${cells.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join(" | ")} |`
  const held = results.filter((result) => result.violations.length === 0).length
  return [line(header), line(widths.map((width) => "-".repeat(width))), ...rows.map(line), "", `faults: ${results.length} scenarios, ${held} held`].join("\n")
}
