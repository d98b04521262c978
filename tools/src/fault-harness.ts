import { execFileSync, type ChildProcess } from "node:child_process"
import { randomBytes } from "node:crypto"
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { DescribeSnapshotsCommand, DescribeVolumesCommand } from "@aws-sdk/client-ec2"
import { GetItemCommand, QueryCommand } from "@aws-sdk/client-dynamodb"
import { DeleteMessageCommand, ReceiveMessageCommand } from "@aws-sdk/client-sqs"
import { unmarshall } from "@aws-sdk/util-dynamodb"
import { Effect } from "effect"
import { DynamoDb, Ec2, Sqs, awsCall } from "@backup-actions/aws"
import { ArchiveCompleted, RestoreCompleted } from "@backup-actions/contracts"
import { DLQ_REASON_ATTRIBUTE } from "@backup-actions/consumer"
import type { PolicyDocument, ServiceName } from "@backup-actions/config"
import { drainQueue, tapBus, type Tap } from "@backup-actions/local"
import { makeExt4Image, sha256OfFile, writeSourceTree } from "./seed"
import { putImageAsSnapshot } from "./snapshot-writer"
import { isSettled, sendRecoveryPointCompleted, settledTwice, snapshotArn } from "./backup-events"
import { startLocalStack, type LocalStack } from "./stack"
import { downloadWithAwsCli, runOn, type StackServices } from "./test-support"

/** The vaults the fault suite's policy routes: direct mode and volume mode, each deleting the source once verified. */
export const FAULT_VAULTS = { direct: "fault-direct", volume: "fault-volume" } as const

const policy: PolicyDocument = {
  rules: [
    { name: "fault-volume", match: { resourceTypes: ["EBS"], vaults: [FAULT_VAULTS.volume] }, archive: { mode: "volume", compression: "zstd", deleteSourceAfterVerify: true } },
    { name: "fault-direct", match: { resourceTypes: ["EBS"], vaults: [FAULT_VAULTS.direct] }, archive: { mode: "direct", compression: "zstd", deleteSourceAfterVerify: true } }
  ]
}

/** Short leases and visibility, so that a killed worker's step and message come back within seconds. */
export const FAULT_TIMING = { leaseSeconds: 4, visibilitySeconds: 4, maxAttempts: 3, toolInactivitySeconds: 15 } as const

/** What must hold after every scenario, as counted from the emulator, the bus and the machine. */
export interface FaultProperties {
  /** Sources deleted although no archive that restores to them exists (must be 0). */
  readonly sourcesDeletedUnverified: number
  /** Archives that a succeeded step names and that are missing or do not restore to the source (must be 0). */
  readonly artifactsLost: number
  /** Outcome events on the bus for the scenario's step (must be exactly 1). */
  readonly outcomeEvents: number
  /** Ledger steps of the recovery point still running (must be 0). */
  readonly stepsLeftRunning: number
  /** Restored volumes and loop devices left over (must be 0). */
  readonly leftovers: number
  readonly volumesLeft: number
  readonly loopDevicesLeft: number
  /** Messages in the DLQs, and how many of them carry a reason. */
  readonly deadLetters: number
  readonly deadLettersWithReason: number
}

/** One recovery point that a scenario archives: its snapshot, the data it holds, and where it goes. */
export interface Subject {
  readonly snapshotId: string
  readonly recoveryPointArn: string
  readonly mode: "direct" | "volume"
  /** The data the snapshot holds (direct mode: the disk image; volume mode: the ext4 image). */
  readonly image: string
  readonly volumeBytes: number
}

/** The local stack, the bus tap and scratch space that every scenario shares. */
export interface FaultWorld {
  readonly local: LocalStack
  readonly scratch: string
  readonly tap: Tap
  readonly run: <A, E>(effect: Effect.Effect<A, E, StackServices>) => Promise<A>
  /** Outcome events seen on the bus so far, by recovery point. */
  readonly events: Map<string, Array<{ readonly detailType: string; readonly status: string }>>
  /** The service processes a scenario started, so that none outlives it. */
  readonly workers: Set<ChildProcess>
}

export const sleep = (ms: number) => new Promise<void>((wake) => setTimeout(wake, ms))

/** Polls until the check returns a value, or fails with the description after the timeout. */
export const waitFor = async <A>(what: string, check: () => Promise<A | undefined>, timeoutMs = 180_000, everyMs = 200): Promise<A> => {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await check()
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(everyMs)
  }
}

export const startFaultWorld = async (name = "faults"): Promise<FaultWorld> => {
  const local = await startLocalStack({
    name,
    policy,
    services: ["restorer", "streamer"],
    startServices: false,
    serviceEnvironment: {
      BACKUP_ACTIONS_STEP_LEASE_SECONDS: String(FAULT_TIMING.leaseSeconds),
      BACKUP_ACTIONS_VISIBILITY_SECONDS: String(FAULT_TIMING.visibilitySeconds),
      BACKUP_ACTIONS_STEP_MAX_ATTEMPTS: String(FAULT_TIMING.maxAttempts),
      // A hung tool is killed after this much silence (in production, minutes).
      BACKUP_ACTIONS_TOOL_INACTIVITY_SECONDS: String(FAULT_TIMING.toolInactivitySeconds)
    }
  })
  const run = <A, E>(effect: Effect.Effect<A, E, StackServices>) => runOn(local, effect)
  const tap = await run(
    tapBus(local.stack.busName, { source: [ArchiveCompleted.source], "detail-type": [ArchiveCompleted.detailType, RestoreCompleted.detailType] }, "faults-outcomes")
  )
  return { local, scratch: mkdtempSync(join(tmpdir(), "faults-")), tap, run, events: new Map(), workers: new Set() }
}

export const stopFaultWorld = async (world: FaultWorld): Promise<void> => {
  await world.local.stop()
  rmSync(world.scratch, { recursive: true, force: true })
}

/** A snapshot of incompressible data (several 8 MiB parts) for direct mode. */
export const seedDirect = async (world: FaultWorld, name: string, mib = 40): Promise<Subject> => {
  const image = join(world.scratch, `${name}.img`)
  writeFileSync(image, randomBytes(mib * 1024 * 1024))
  const snapshot = await world.run(putImageAsSnapshot(image, `fault suite: ${name}`))
  execFileSync("truncate", ["-s", String(snapshot.volumeBytes), image])
  return { snapshotId: snapshot.snapshotId, recoveryPointArn: snapshotArn(snapshot.snapshotId), mode: "direct", image, volumeBytes: snapshot.volumeBytes }
}

/** A snapshot of an ext4 filesystem holding a tree of files (one large), for volume mode. */
export const seedVolume = async (world: FaultWorld, name: string): Promise<Subject> => {
  const tree = join(world.scratch, `${name}-tree`)
  // Large enough that tar runs for seconds: its output waits on the upload to the emulator.
  writeSourceTree(tree, { largeFileBytes: 192 * 1024 * 1024 })
  const image = join(world.scratch, `${name}.ext4`)
  makeExt4Image(tree, image, 320)
  const snapshot = await world.run(putImageAsSnapshot(image, `fault suite: ${name}`))
  return { snapshotId: snapshot.snapshotId, recoveryPointArn: snapshotArn(snapshot.snapshotId), mode: "volume", image, volumeBytes: snapshot.volumeBytes }
}

export const sendEvent = (world: FaultWorld, subject: Subject) =>
  world.run(sendRecoveryPointCompleted({ snapshotId: subject.snapshotId, vault: subject.mode === "direct" ? FAULT_VAULTS.direct : FAULT_VAULTS.volume }))

/** The ledger item of a step, as stored. */
export const ledgerItem = async (world: FaultWorld, recoveryPointArn: string, action: string): Promise<Record<string, unknown> | undefined> => {
  const result = await world.run(
    Effect.flatMap(DynamoDb, (dynamodb) =>
      awsCall("dynamodb:GetItem", (abortSignal) =>
        dynamodb.send(
          new GetItemCommand({ TableName: world.local.stack.ledgerTable, Key: { pk: { S: recoveryPointArn }, sk: { S: action } }, ConsistentRead: true }),
          { abortSignal }
        )
      )
    )
  )
  return result.Item === undefined ? undefined : unmarshall(result.Item)
}

/** Every ledger item of a recovery point. */
const ledgerItems = async (world: FaultWorld, recoveryPointArn: string): Promise<Array<Record<string, unknown>>> => {
  const result = await world.run(
    Effect.flatMap(DynamoDb, (dynamodb) =>
      awsCall("dynamodb:Query", (abortSignal) =>
        dynamodb.send(
          new QueryCommand({
            TableName: world.local.stack.ledgerTable,
            KeyConditionExpression: "pk = :pk",
            ExpressionAttributeValues: { ":pk": { S: recoveryPointArn } },
            ConsistentRead: true
          }),
          { abortSignal }
        )
      )
    )
  )
  return (result.Items ?? []).map((item) => unmarshall(item))
}

/** Waits until the step is finished and its outcome published (or given up), and returns it. */
export const waitForSettled = (world: FaultWorld, subject: Subject, action: string, timeoutMs = 180_000) =>
  waitFor(
    `${action} of ${subject.snapshotId} to finish and be announced`,
    async () => {
      const first = await ledgerItem(world, subject.recoveryPointArn, action)
      if (!isSettled(first)) return undefined
      await sleep(100)
      const second = await ledgerItem(world, subject.recoveryPointArn, action)
      return settledTwice(first, second) ? second : undefined
    },
    timeoutMs
  )

/** Waits until the ledger shows the step's upload has recorded at least `parts` parts. */
export const waitForParts = (world: FaultWorld, subject: Subject, action: string, parts: number) =>
  waitFor(`${parts} part(s) of ${subject.snapshotId} recorded`, async () => {
    const item = await ledgerItem(world, subject.recoveryPointArn, action)
    const upload = item?.["upload"] as { partsDone?: number } | undefined
    return (upload?.partsDone ?? 0) >= parts ? item : undefined
  }, 180_000, 25)

/** Waits for a service process to exit by itself (a failpoint killed it). */
export const waitForExit = (child: ChildProcess, timeoutMs = 120_000) =>
  waitFor(`process ${child.pid ?? "?"} to exit`, async () => (child.exitCode !== null || child.signalCode !== null ? true : undefined), timeoutMs)

const snapshotExists = async (world: FaultWorld, snapshotId: string): Promise<boolean> => {
  const result = await world.run(
    Effect.flatMap(Ec2, (ec2) =>
      awsCall("ec2:DescribeSnapshots", (abortSignal) =>
        ec2.send(new DescribeSnapshotsCommand({ Filters: [{ Name: "snapshot-id", Values: [snapshotId] }] }), { abortSignal })
      )
    )
  )
  return (result.Snapshots ?? []).length > 0
}

/** Whether the archive a succeeded step names restores to the source's data (direct: the disk; volume: the files). */
const archiveRestores = async (world: FaultWorld, subject: Subject, outcome: Record<string, unknown>): Promise<boolean> => {
  const location = outcome["location"] as { bucket: string; key: string } | undefined
  if (location === undefined) return false
  const archive = join(world.scratch, `${subject.snapshotId}.check.zst`)
  try {
    downloadWithAwsCli(world.local, location, archive)
  } catch {
    return false
  }
  if (subject.mode === "direct") {
    const restored = join(world.scratch, `${subject.snapshotId}.check.img`)
    execFileSync("zstd", ["-q", "-d", "-f", archive, "-o", restored])
    const same = sha256OfFile(restored) === sha256OfFile(subject.image)
    rmSync(restored, { force: true })
    return same
  }
  // Volume mode: the whole tar must list and extract; its large file must be byte-identical.
  const into = join(world.scratch, `${subject.snapshotId}.check`)
  rmSync(into, { recursive: true, force: true })
  execFileSync("mkdir", ["-p", into])
  try {
    execFileSync("bash", ["-o", "pipefail", "-c", `zstd -q -d -c "${archive}" | tar -xpf - --numeric-owner -C "${into}"`], { stdio: "pipe" })
    return existsSync(join(into, "data", "large.bin"))
  } catch {
    return false
  } finally {
    rmSync(into, { recursive: true, force: true })
    rmSync(archive, { force: true })
  }
}

/** Volumes restored from the subject's snapshot that still exist (the restorer's, for volume mode). */
export const restoredVolumesLeft = async (world: FaultWorld, subject: Subject): Promise<number> => {
  const volumes = await world.run(
    Effect.flatMap(Ec2, (ec2) =>
      awsCall("ec2:DescribeVolumes", (abortSignal) =>
        ec2.send(new DescribeVolumesCommand({ Filters: [{ Name: "snapshot-id", Values: [subject.snapshotId] }] }), { abortSignal })
      )
    )
  )
  return (volumes.Volumes ?? []).filter((volume) => volume.SnapshotId === subject.snapshotId).length
}

/** Loop devices over the stack's work directory (the streamer's materialized volumes). */
const loopDevicesLeft = (world: FaultWorld): number =>
  execFileSync("losetup", ["--list", "--noheadings", "--output", "BACK-FILE"], { encoding: "utf8" })
    .split("\n")
    .filter((line) => line.includes(world.local.workDir)).length

/** Takes what arrived on the bus tap, counted by recovery point. */
export const collectEvents = async (world: FaultWorld): Promise<void> => {
  const bodies = await world.run(world.tap.drain(1))
  for (const body of bodies) {
    const event = JSON.parse(body) as { "detail-type": string; detail: { correlationId: string; status: string } }
    const list = world.events.get(event.detail.correlationId) ?? []
    list.push({ detailType: event["detail-type"], status: event.detail.status })
    world.events.set(event.detail.correlationId, list)
  }
}

/** Takes every message from the services' DLQs, with its reason. */
const drainDeadLetters = async (world: FaultWorld): Promise<Array<{ readonly body: string; readonly reason: string | undefined }>> => {
  const letters: Array<{ body: string; reason: string | undefined }> = []
  for (const queue of Object.values(world.local.stack.queues)) {
    for (;;) {
      const received = await world.run(
        Effect.flatMap(Sqs, (sqs) =>
          awsCall("sqs:ReceiveMessage", (abortSignal) =>
            sqs.send(
              new ReceiveMessageCommand({ QueueUrl: queue.deadLetterUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0, MessageAttributeNames: ["All"] }),
              { abortSignal }
            )
          )
        )
      )
      const messages = received.Messages ?? []
      if (messages.length === 0) break
      for (const message of messages) {
        letters.push({ body: message.Body ?? "", reason: message.MessageAttributes?.[DLQ_REASON_ATTRIBUTE]?.StringValue })
        await world.run(
          Effect.flatMap(Sqs, (sqs) =>
            awsCall("sqs:DeleteMessage", (abortSignal) => sqs.send(new DeleteMessageCommand({ QueueUrl: queue.deadLetterUrl, ReceiptHandle: message.ReceiptHandle }), { abortSignal }))
          )
        )
      }
    }
  }
  return letters
}

/**
 * Counts the properties after a scenario: the source, the archive the step names, the events
 * the bus carried for the recovery point, the ledger, leftovers and the DLQs.
 */
export const measure = async (world: FaultWorld, subject: Subject, archiveAction: string): Promise<FaultProperties & { readonly reasons: ReadonlyArray<string> }> => {
  await collectEvents(world)
  const sourceGone = !(await snapshotExists(world, subject.snapshotId))
  const step = await ledgerItem(world, subject.recoveryPointArn, archiveAction)
  const outcome = (step?.["outcome"] ?? {}) as Record<string, unknown>
  const succeeded = step?.["status"] === "succeeded"
  const restores = succeeded || sourceGone ? await archiveRestores(world, subject, outcome) : false
  const items = await ledgerItems(world, subject.recoveryPointArn)
  // Dead letters about this recovery point (a stale copy of another scenario's event is not this one's).
  const letters = (await drainDeadLetters(world)).filter((letter) => letter.body.includes(subject.snapshotId))
  const volumesLeft = await restoredVolumesLeft(world, subject)
  const loops = loopDevicesLeft(world)
  return {
    sourcesDeletedUnverified: sourceGone && !restores ? 1 : 0,
    artifactsLost: succeeded && !restores ? 1 : 0,
    outcomeEvents: (world.events.get(subject.recoveryPointArn) ?? []).filter((event) => event.detailType === ArchiveCompleted.detailType).length,
    stepsLeftRunning: items.filter((item) => item["status"] === "running").length,
    leftovers: volumesLeft + loops,
    volumesLeft,
    loopDevicesLeft: loops,
    deadLetters: letters.length,
    deadLettersWithReason: letters.filter((letter) => (letter.reason ?? "") !== "").length,
    reasons: letters.map((letter) => letter.reason ?? "")
  }
}

/** Starts a service's process with the failpoints given (none: a plain worker). */
export const startWorker = (world: FaultWorld, service: ServiceName, failpoints = ""): ChildProcess => {
  const child = world.local.startService(service, failpoints === "" ? {} : { BACKUP_ACTIONS_FAILPOINTS: failpoints })
  world.workers.add(child)
  child.once("exit", () => world.workers.delete(child))
  return child
}

/** Ends a service process and waits for it. */
export const stopWorker = async (child: ChildProcess, signal: NodeJS.Signals = "SIGTERM"): Promise<void> => {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>((done) => child.once("exit", () => done()))
  child.kill(signal)
  const timer = setTimeout(() => child.kill("SIGKILL"), 10_000)
  await exited
  clearTimeout(timer)
}

/** Ends every process a scenario started, frozen ones included. */
export const stopAllWorkers = async (world: FaultWorld): Promise<void> => {
  await Promise.all(
    [...world.workers].map(async (child) => {
      child.kill("SIGCONT")
      await stopWorker(child, "SIGKILL")
    })
  )
}

/** Takes what is visible in the services' queues between scenarios, so that no stale copy reaches the next scenario's workers. */
export const drainQueues = async (world: FaultWorld): Promise<void> => {
  for (const queue of Object.values(world.local.stack.queues)) await world.run(drainQueue(queue.url)(0))
}

/** The mount points under the stack's work directory (a streamer's filesystems being archived). */
export const mountsUnder = (world: FaultWorld): ReadonlyArray<string> =>
  execFileSync("findmnt", ["--list", "--noheadings", "--output", "TARGET"], { encoding: "utf8" })
    .split("\n")
    .filter((target) => target.startsWith(world.local.workDir))

/**
 * After a scenario is measured: unmounts and detaches what a killed streamer left under the
 * stack's work directory, so that the next scenario counts only its own leftovers.
 */
export const clearLeftovers = (world: FaultWorld): void => {
  const mounts = [...mountsUnder(world)]
  for (const target of mounts.reverse()) execFileSync("umount", ["--lazy", target])
  const loops = execFileSync("losetup", ["--list", "--noheadings", "--output", "NAME,BACK-FILE"], { encoding: "utf8" })
    .split("\n")
    .filter((line) => line.includes(world.local.workDir))
    .map((line) => line.trim().split(/\s+/)[0] ?? "")
  for (const device of loops) if (device !== "") execFileSync("losetup", ["--detach", device])
}
