import { readdirSync, readFileSync } from "node:fs"
import { createHash, randomBytes } from "node:crypto"
import { CompleteSnapshotCommand, PutSnapshotBlockCommand, StartSnapshotCommand } from "@aws-sdk/client-ebs"
import { DescribeSnapshotsCommand } from "@aws-sdk/client-ec2"
import { Effect } from "effect"
import { Ebs, Ec2, awsCall } from "@backup-actions/aws"
import { EMULATOR_REGION } from "@backup-actions/local"
import type { RunningTool } from "./exec"

const readStat = (pid: string): string => {
  try {
    return readFileSync(`/proc/${pid}/stat`, "utf8")
  } catch {
    // The process exited while the list was read.
    return ""
  }
}

/**
 * The state letters of the processes of a process group (R running, S sleeping, D waiting,
 * T stopped, Z exited), by process id: a tool started by `spawnTool` leads a group of its
 * own, and its children are in it.
 */
export const processStatesOf = (group: number | undefined): ReadonlyMap<number, string> =>
  new Map(
    readdirSync("/proc")
      .filter((entry) => /^\d+$/.test(entry))
      .flatMap((entry): ReadonlyArray<readonly [number, string]> => {
        const stat = readStat(entry)
        // "pid (comm) state ppid pgrp ...": the command name may hold spaces and parentheses.
        const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
        return stat !== "" && Number(fields[2]) === group ? [[Number(entry), fields[0] ?? ""]] : []
      })
  )

/** The processes of a group that are alive; zombies (exited, waiting for a parent that never reaps them) do not count. */
export const liveProcessesOf = (group: number | undefined): ReadonlyArray<number> =>
  [...processStatesOf(group)].flatMap(([pid, state]) => (state === "Z" ? [] : [pid]))

/** Reads a tool's output to its end and counts its bytes. */
export const drainTool = (tool: RunningTool) =>
  Effect.promise(async () => {
    let bytes = 0
    for await (const piece of tool.stdout) bytes += Buffer.byteLength(piece as Buffer)
    return bytes
  })

/**
 * The processes of a group still alive once they had a moment to go: the tool's own exit is
 * awaited, its children's cannot be (they are not this process's children), and a child
 * killed with it takes a few milliseconds to be gone.
 */
export const processesLeftOf = (group: number | undefined) =>
  Effect.gen(function* () {
    for (let attempt = 0; attempt < 50 && liveProcessesOf(group).length > 0; attempt += 1) yield* Effect.sleep("20 millis")
    return liveProcessesOf(group)
  })

const BLOCK = 512 * 1024

/** A snapshot of two blocks of data written through the EBS direct APIs, as AWS Backup would leave one: its id and ARN. */
export const snapshotOfData = Effect.gen(function* () {
  const ebs = yield* Ebs
  const started = yield* awsCall("ebs:StartSnapshot", (abortSignal) => ebs.send(new StartSnapshotCommand({ VolumeSize: 1, Timeout: 60 }), { abortSignal }))
  const snapshotId = started.SnapshotId ?? ""
  const blockIndices = [0, 7]
  yield* Effect.forEach(
    blockIndices,
    (index) => {
      const body = randomBytes(BLOCK)
      const checksum = createHash("sha256").update(body).digest("base64")
      return awsCall("ebs:PutSnapshotBlock", (abortSignal) =>
        ebs.send(
          new PutSnapshotBlockCommand({ SnapshotId: snapshotId, BlockIndex: index, BlockData: body, DataLength: BLOCK, Checksum: checksum, ChecksumAlgorithm: "SHA256" }),
          { abortSignal }
        )
      )
    },
    { discard: true }
  )
  yield* awsCall("ebs:CompleteSnapshot", (abortSignal) => ebs.send(new CompleteSnapshotCommand({ SnapshotId: snapshotId, ChangedBlocksCount: blockIndices.length }), { abortSignal }))
  return { snapshotId, recoveryPointArn: `arn:aws:ec2:${EMULATOR_REGION}::snapshot/${snapshotId}` }
})

export const snapshotExists = (snapshotId: string) =>
  Effect.flatMap(Ec2, (ec2) =>
    awsCall("ec2:DescribeSnapshots", (abortSignal) => ec2.send(new DescribeSnapshotsCommand({ Filters: [{ Name: "snapshot-id", Values: [snapshotId] }] }), { abortSignal }))
  ).pipe(Effect.map((found) => (found.Snapshots ?? []).length === 1))
