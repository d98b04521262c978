/**
 * `npm run drill`: one restore drill over the local stack, timed. A snapshot of disk-like data
 * (1 GiB unless DRILL_SIZE_GIB says otherwise) is written through the EBS direct APIs, archived
 * by the services in direct mode as AWS Backup's event asks, and recorded by the reporter; then
 * the operator CLI's scheduled `drill` finds it as the volume's newest artifact, restores it into
 * a scratch EBS snapshot, verifies every block against the manifest, deletes the snapshot, and
 * records the RTO. It prints the drill table and the RTO against the archive's own time.
 */
import { mkdirSync, rmSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { GetItemCommand } from "@aws-sdk/client-dynamodb"
import { unmarshall } from "@aws-sdk/util-dynamodb"
import { Effect, Schedule, Schema, type Layer, type Scope } from "effect"
import { DynamoDb, awsCall } from "@backup-actions/aws"
import type { PolicyDocument } from "@backup-actions/config"
import { DrillRecord } from "@backup-actions/ledger"
import { localStateDir } from "@backup-actions/local"
import { dayOf, outcomeDayPartition } from "@backup-actions/reports"
import { sendRecoveryPointCompleted, snapshotArn, waitForStep } from "./backup-events"
import { runCli } from "./cli-process"
import { writeDiskLikeInput } from "./disk-like-input"
import { formatBytes } from "./report"
import { putImageAsSnapshot } from "./snapshot-writer"
import { startLocalStack, type LocalStack } from "./stack"

const GiB = 1024 ** 3
const sizeGiB = Number(process.env["DRILL_SIZE_GIB"] ?? "1")
const VOLUME_ID = "vol-0d1111000000000000"

const policy: PolicyDocument = {
  rules: [{ name: "ebs-direct", match: { resourceTypes: ["EBS"] }, archive: { mode: "direct", compression: "zstd", deleteSourceAfterVerify: false } }],
  drill: { every: "7d" }
}

const DrillOutput = Schema.parseJson(Schema.Struct({ ran: Schema.Array(DrillRecord), latest: Schema.Array(DrillRecord) }))

const say = (text: string): void => {
  process.stdout.write(`${text}\n`)
}

/** Waits until the reporter has recorded an outcome: the drill finds artifacts among the reporter's rows. */
const waitRecorded = (ledgerTable: string, idempotencyKey: string) =>
  Effect.flatMap(DynamoDb, (dynamodb) =>
    awsCall("dynamodb:GetItem", (abortSignal) =>
      dynamodb.send(
        new GetItemCommand({ TableName: ledgerTable, Key: { pk: { S: outcomeDayPartition(dayOf(Date.now())) }, sk: { S: idempotencyKey } }, ConsistentRead: true }),
        { abortSignal }
      )
    )
  ).pipe(
    Effect.filterOrFail((found) => found.Item !== undefined, () => new Error(`the reporter has not recorded ${idempotencyKey}`)),
    Effect.retry({ schedule: Schedule.spaced("1 second"), times: 120 }),
    Effect.map((found) => unmarshall(found.Item ?? {}))
  )

const main = async (): Promise<number> => {
  if (!(sizeGiB > 0)) throw new Error(`DRILL_SIZE_GIB must be a positive number, not "${process.env["DRILL_SIZE_GIB"] ?? ""}"`)
  const work = join(localStateDir(), "drill")
  rmSync(work, { recursive: true, force: true })
  mkdirSync(work, { recursive: true })
  const input = join(work, "volume.img")
  say(`backup-actions drill: a ${sizeGiB} GiB direct-mode archive restored to a scratch snapshot, verified and timed\n`)
  say(`1/4 writing ${sizeGiB} GiB of disk-like data (text, random, zeros) and starting the local stack`)
  writeDiskLikeInput(input, Math.round(sizeGiB * GiB))
  let local: LocalStack | undefined
  try {
    local = await startLocalStack({ name: "drill", policy, services: ["restorer", "streamer", "reporter"] })
    const stack = local
    const run = <A, E>(effect: Effect.Effect<A, E, Layer.Layer.Success<LocalStack["clients"]> | Scope.Scope>) =>
      Effect.runPromise(Effect.scoped(Effect.provide(effect, stack.clients)))
    const stackFile = join(work, "stack.json")
    writeFileSync(stackFile, JSON.stringify({ endpoint: stack.emulator.endpoint, ...stack.stack }, null, 2))

    say("2/4 writing it as an EBS snapshot through the EBS direct APIs")
    const source = await run(putImageAsSnapshot(input, "backup-actions drill source"))
    rmSync(input, { force: true })

    say(`3/4 AWS Backup's event for ${source.snapshotId}: the services archive it in direct mode and the reporter records it`)
    const recoveryPoint = snapshotArn(source.snapshotId)
    await run(sendRecoveryPointCompleted({ snapshotId: source.snapshotId, vault: "drill", volumeId: VOLUME_ID }))
    const archived = await run(waitForStep(stack.stack.ledgerTable, recoveryPoint, "archive:direct", "30 minutes"))
    if (archived["status"] !== "succeeded") throw new Error(`the archive failed: ${String(archived["reason"])}`)
    const archiveSeconds = Number(archived["outcome"]?.durationMs ?? 0) / 1000
    await run(waitRecorded(stack.stack.ledgerTable, `${recoveryPoint}#archive:direct`))

    say("4/4 the scheduled drill (`backup-actions drill`, the policy's period 7d): restore, verify, delete the scratch\n")
    const drilled = await runCli(stackFile, "drill", "--every", policy.drill?.every ?? "7d", "--json")
    if (drilled.status !== 0) throw new Error(`the drill failed (exit ${String(drilled.status)}):\n${drilled.stderr}`)
    const { ran } = Schema.decodeUnknownSync(DrillOutput)(drilled.stdout)
    const table = await runCli(stackFile, "drill", "--every", "7d")
    say(table.stdout.trimEnd())
    const drill = ran[0]
    if (drill?.result !== "passed" || drill.rtoSeconds === undefined) throw new Error(`no drill passed: ${drilled.stdout}`)
    const bytes = drill.bytes ?? source.volumeBytes
    const rate = bytes / 1024 ** 2 / drill.rtoSeconds
    say("")
    say(`RTO of the ${formatBytes(bytes)} direct-mode archive restored to a snapshot: ${drill.rtoSeconds.toFixed(1)} s (${rate.toFixed(1)} MiB/s)`)
    say(`the archive of the same snapshot took ${archiveSeconds.toFixed(1)} s: restoring took ${(drill.rtoSeconds / archiveSeconds).toFixed(2)}x the archive's time`)
    say(`scratch ${drill.scratch ?? "-"} ${drill.scratchDeleted ? "deleted" : "LEFT BEHIND"}`)
    return drill.scratchDeleted ? 0 : 1
  } finally {
    await local?.stop()
  }
}

main().then(
  (code) => {
    process.exitCode = code
  },
  (error: unknown) => {
    process.stderr.write(`drill failed: ${error instanceof Error ? error.message : String(error)}\n`)
    process.exitCode = 1
  }
)
