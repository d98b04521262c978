/**
 * `npm run bench:memory`: the streamer's peak memory in direct mode for a large, sparse
 * snapshot, against the ceiling the streamer is held to. It writes a snapshot of
 * BENCH_VOLUME_GIB (default 2048) whose only data is BENCH_WRITTEN_MIB (default 512) of
 * incompressible blocks, in runs of 8 MiB spread evenly across the volume (as a filesystem
 * leaves a mostly empty disk), then has the running services archive it in direct mode as
 * AWS Backup's event asks. It prints the streamer process's peak RSS over the ceiling, the
 * sizes of the parts the archive was stored in, and the upload's wall time. The read-back
 * that follows decompresses the whole image, holes included, which for 2 TiB takes hours on
 * the emulator: it is watched for BENCH_READ_BACK_SAMPLE_SECONDS (default 60) and its time
 * estimated from its rate, or waited for with BENCH_READ_BACK=wait. BENCH_STREAMER_ENV (a JSON
 * object) adds to the streamer's environment, to weigh runtime settings such as NODE_OPTIONS.
 */
import { createHash, randomBytes } from "node:crypto"
import { existsSync, readFileSync, readdirSync } from "node:fs"
import { join } from "node:path"
import { CompleteSnapshotCommand, PutSnapshotBlockCommand, StartSnapshotCommand } from "@aws-sdk/client-ebs"
import { GetItemCommand } from "@aws-sdk/client-dynamodb"
import { HeadObjectCommand } from "@aws-sdk/client-s3"
import { unmarshall } from "@aws-sdk/util-dynamodb"
import { Effect, type Layer, type Scope } from "effect"
import { DynamoDb, Ebs, S3, awsCall } from "@backup-actions/aws"
import type { PolicyDocument } from "@backup-actions/config"
import { localStateDir } from "@backup-actions/local"
import { sendRecoveryPointCompleted, snapshotArn, waitForStep } from "./backup-events"
import { logLineTimes } from "./bench-support"
import { formatBytes } from "./report"
import { startLocalStack, type LocalStack } from "./stack"

const MiB = 1024 * 1024
const GiB = 1024 * MiB
/** The streamer's memory ceiling in direct mode, whatever the volume's size. */
const RSS_CEILING = 256 * MiB
const BLOCK = 512 * 1024
/** Blocks written together: a run of 8 MiB, as a file's extent would be. */
const RUN_BLOCKS = 16

const volumeGiB = Number(process.env["BENCH_VOLUME_GIB"] ?? "2048")
const writtenMiB = Number(process.env["BENCH_WRITTEN_MIB"] ?? "512")
const policy: PolicyDocument = {
  rules: [{ name: "ebs-direct", match: { resourceTypes: ["EBS"] }, archive: { mode: "direct", compression: "zstd", deleteSourceAfterVerify: false } }]
}

/** The block indexes written: runs of RUN_BLOCKS at an even stride across the volume. */
const writtenBlocks = (): ReadonlyArray<number> => {
  const runs = Math.max(1, Math.floor((writtenMiB * MiB) / (RUN_BLOCKS * BLOCK)))
  const totalBlocks = (volumeGiB * GiB) / BLOCK
  const stride = Math.floor(totalBlocks / runs)
  return Array.from({ length: runs }, (_, run) => Array.from({ length: RUN_BLOCKS }, (_, index) => run * stride + index)).flat()
}

/** A sparse snapshot: StartSnapshot at the full size, PutSnapshotBlock for the written blocks only. */
const putSparseSnapshot = (blocks: ReadonlyArray<number>) =>
  Effect.gen(function* () {
    const ebs = yield* Ebs
    const started = yield* awsCall("ebs:StartSnapshot", (abortSignal) =>
      ebs.send(new StartSnapshotCommand({ VolumeSize: volumeGiB, Description: "backup-actions memory bench", Timeout: 60 }), { abortSignal })
    )
    const snapshotId = started.SnapshotId ?? ""
    yield* Effect.forEach(
      blocks,
      (index) => {
        const data = randomBytes(BLOCK)
        const checksum = createHash("sha256").update(data).digest("base64")
        return awsCall("ebs:PutSnapshotBlock", (abortSignal) =>
          ebs.send(
            new PutSnapshotBlockCommand({ SnapshotId: snapshotId, BlockIndex: index, BlockData: data, DataLength: BLOCK, Checksum: checksum, ChecksumAlgorithm: "SHA256" }),
            { abortSignal }
          )
        )
      },
      { concurrency: 8, discard: true }
    )
    yield* awsCall("ebs:CompleteSnapshot", (abortSignal) =>
      ebs.send(new CompleteSnapshotCommand({ SnapshotId: snapshotId, ChangedBlocksCount: blocks.length }), { abortSignal })
    )
    return snapshotId
  })

/** A process's resident set: its peak so far (VmHWM) and now (VmRSS). */
const rssOf = (pid: number | undefined): { readonly peak: number; readonly now: number } => {
  if (pid === undefined || !existsSync(`/proc/${pid}/status`)) return { peak: 0, now: 0 }
  const status = readFileSync(`/proc/${pid}/status`, "utf8")
  const kib = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+)\\s+kB`).exec(status)?.[1] ?? "0") * 1024
  return { peak: kib("VmHWM"), now: kib("VmRSS") }
}

/** When the streamer's log first has a line with `needle`, from its timestamp. */
const loggedAt = (logFile: string, needle: string): number | undefined => logLineTimes(logFile, "")(needle)

/** The streamer's decompressor of the read-back (a `zstd -d` child), if one runs: its pid. */
const readBackTool = (streamerPid: number | undefined): number | undefined => {
  if (streamerPid === undefined) return undefined
  const children = readdirSync("/proc").filter((entry) => /^\d+$/.test(entry))
  return children.map(Number).find((pid) => {
    const stat = existsSync(`/proc/${pid}/stat`) ? readFileSync(`/proc/${pid}/stat`, "utf8") : ""
    // pid (comm) state ppid ...
    const match = /^\d+ \((.*)\) \S+ (\d+)/.exec(stat)
    return match?.[1] === "zstd" && Number(match[2]) === streamerPid
  })
}

/** Bytes a process has written so far (its decompressed output, for the read-back's `zstd -d`). */
const bytesWritten = (pid: number): number => {
  const io = existsSync(`/proc/${pid}/io`) ? readFileSync(`/proc/${pid}/io`, "utf8") : ""
  return Number(/wchar:\s+(\d+)/.exec(io)?.[1] ?? "0")
}

const sleep = (ms: number) => new Promise((wake) => setTimeout(wake, ms))

/** The sizes of an archive's parts, from HeadObject by part number (None while the upload is not completed). */
const partSizesOf = (bucket: string, key: string) =>
  Effect.gen(function* () {
    const s3 = yield* S3
    const head = (partNumber: number) =>
      awsCall("s3:HeadObject", (abortSignal) => s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key, PartNumber: partNumber }), { abortSignal }))
    const first = yield* head(1)
    const rest = yield* Effect.forEach(
      Array.from({ length: Math.max(0, (first.PartsCount ?? 1) - 1) }, (_, index) => index + 2),
      (partNumber) => Effect.map(head(partNumber), (answer) => answer.ContentLength ?? 0),
      { concurrency: 8 }
    )
    return [first.ContentLength ?? 0, ...rest]
  })

/** Part sizes as runs: "8.0 MiB x 250, 16.0 MiB x 3, 2.1 MiB". */
const describeParts = (sizes: ReadonlyArray<number>): string => {
  const runs: Array<{ size: number; count: number }> = []
  for (const size of sizes) {
    const last = runs[runs.length - 1]
    if (last !== undefined && Math.abs(last.size - size) < 5 * MiB && size >= last.size) last.count += 1
    else runs.push({ size, count: 1 })
  }
  return runs.map((run) => `${formatBytes(run.size)}${run.count > 1 ? ` x ${run.count}` : ""}`).join(", ")
}

/** How long the read-back's decompressor is watched to estimate its rate, unless it is waited for (BENCH_READ_BACK=wait). */
const READ_BACK_SAMPLE_MS = Number(process.env["BENCH_READ_BACK_SAMPLE_SECONDS"] ?? "60") * 1000
const waitForReadBack = process.env["BENCH_READ_BACK"] === "wait"

const main = async (): Promise<void> => {
  const name = `bench-memory-${process.pid}`
  const local: LocalStack = await startLocalStack({ name, policy, services: ["restorer", "streamer"], startServices: false })
  const run = <A, E>(effect: Effect.Effect<A, E, Layer.Layer.Success<LocalStack["clients"]> | Scope.Scope>) =>
    Effect.runPromise(Effect.scoped(Effect.provide(effect, local.clients)))
  const logFile = join(localStateDir(), "logs", `${name}-streamer.log`)
  try {
    const blocks = writtenBlocks()
    process.stdout.write(`writing a ${volumeGiB} GiB snapshot with ${formatBytes(blocks.length * BLOCK)} of data in ${blocks.length / RUN_BLOCKS} runs...\n`)
    const snapshotId = await run(putSparseSnapshot(blocks))
    const recoveryPoint = snapshotArn(snapshotId)
    const archiveKey = `archives/ebs/${snapshotId}/direct/disk.img.zst`
    process.stdout.write(`direct mode: the services archive ${snapshotId} as AWS Backup's event asks...\n`)
    local.startService("restorer")
    const streamer = local.startService("streamer", JSON.parse(process.env["BENCH_STREAMER_ENV"] ?? "{}") as Record<string, string>)
    // The streamer's own footprint before it archives anything: the runtime, its modules, its clients.
    await sleep(10_000)
    const idleRss = rssOf(streamer.pid)
    const started = Date.now()
    await run(sendRecoveryPointCompleted({ snapshotId, vault: "bench" }))

    // The upload: until the streamer logs the last part recorded, then its peak memory so far.
    let recordedPartSize: number | undefined
    while (loggedAt(logFile, `${snapshotId}: 100% read`) === undefined) {
      if (streamer.exitCode !== null) throw new Error(`the streamer exited with ${streamer.exitCode}`)
      const item = await run(
        Effect.flatMap(DynamoDb, (dynamodb) =>
          awsCall("dynamodb:GetItem", (abortSignal) =>
            dynamodb.send(
              new GetItemCommand({ TableName: local.stack.ledgerTable, Key: { pk: { S: recoveryPoint }, sk: { S: "archive:direct" } }, ConsistentRead: true }),
              { abortSignal }
            )
          )
        )
      ).catch(() => ({ Item: undefined }))
      const record = item.Item === undefined ? undefined : unmarshall(item.Item)
      if (record?.["status"] === "failed") throw new Error(`the archive failed: ${String(record["reason"])}`)
      recordedPartSize = (record?.["upload"] as { partSize?: number } | undefined)?.partSize ?? recordedPartSize
      if (Date.now() - started > 180 * 60 * 1000) throw new Error("the upload took over 180 minutes")
      await sleep(1_000)
    }
    const uploadRss = rssOf(streamer.pid)
    const begun = loggedAt(logFile, `archiving ${snapshotId} directly`) ?? started
    const uploaded = loggedAt(logFile, `${snapshotId}: 100% read`) ?? Date.now()
    let parts: ReadonlyArray<number> = []
    for (let attempt = 0; attempt < 120 && parts.length === 0; attempt += 1) {
      parts = await run(partSizesOf(local.stack.artifactBucket, archiveKey)).catch(() => [])
      if (parts.length === 0) await sleep(500)
    }

    // The read-back: waited for, or watched for a while and its whole time estimated from its rate.
    let readBack: string
    let stepRss = uploadRss
    let status = "running"
    if (waitForReadBack) {
      const archived = await run(waitForStep(local.stack.ledgerTable, recoveryPoint, "archive:direct", "600 minutes"))
      stepRss = rssOf(streamer.pid)
      const outcome = (archived["outcome"] ?? {}) as { readonly verified?: string }
      status = `${String(archived["status"])}, verified ${String(outcome.verified)}`
      const verified = loggedAt(logFile, `/${snapshotId}/direct/disk.img.zst: content verified`)
      readBack = verified === undefined ? "not logged" : `${((verified - uploaded) / 1000).toFixed(1)} s`
    } else {
      let tool = readBackTool(streamer.pid)
      for (let attempt = 0; attempt < 60 && tool === undefined; attempt += 1) {
        await sleep(500)
        tool = readBackTool(streamer.pid)
      }
      if (tool === undefined) readBack = "its decompressor was not seen"
      else {
        const from = { at: Date.now(), bytes: bytesWritten(tool) }
        await sleep(READ_BACK_SAMPLE_MS)
        const to = { at: Date.now(), bytes: bytesWritten(tool) }
        const rate = (to.bytes - from.bytes) / Math.max(1, to.at - from.at) * 1000
        stepRss = rssOf(streamer.pid)
        readBack = `${formatBytes(rate)}/s of image decompressed over ${((to.at - from.at) / 1000).toFixed(0)} s: about ${(volumeGiB * GiB / Math.max(1, rate) / 60).toFixed(0)} minutes for the whole image (not waited for; BENCH_READ_BACK=wait waits)`
      }
    }
    await local.stopService("streamer")
    await local.stopService("restorer")
    const stored = parts.reduce((total, size) => total + size, 0)
    process.stdout.write(
      [
        "",
        `snapshot: ${volumeGiB} GiB declared, ${formatBytes(blocks.length * BLOCK)} written (${blocks.length} blocks of 512 KiB, incompressible)`,
        `streamer RSS when idle, before the event: ${formatBytes(idleRss.now)}`,
        `streamer peak RSS during the upload: ${formatBytes(uploadRss.peak)} = ${(uploadRss.peak / RSS_CEILING).toFixed(2)} of the ${formatBytes(RSS_CEILING)} ceiling`,
        `streamer peak RSS by the end of the run: ${formatBytes(stepRss.peak)} = ${(stepRss.peak / RSS_CEILING).toFixed(2)} of the ceiling`,
        `parts: ${parts.length} (${describeParts(parts)}), ${formatBytes(stored)} stored; the ledger recorded part size ${String(recordedPartSize)} (${formatBytes(recordedPartSize ?? 0)})`,
        `upload: ${((uploaded - begun) / 1000).toFixed(1)} s from "archiving" to the last part recorded; ${((uploaded - started) / 1000).toFixed(1)} s from the event`,
        `read-back: ${readBack}; step ${status}`
      ].join("\n") + "\n"
    )
    process.stdout.write(
      `${JSON.stringify({ volumeGiB, writtenBytes: blocks.length * BLOCK, idleRssBytes: idleRss.now, uploadPeakRssBytes: uploadRss.peak, ofCeiling: uploadRss.peak / RSS_CEILING, runPeakRssBytes: stepRss.peak, recordedPartSize, partSizes: parts, storedBytes: stored, uploadSeconds: (uploaded - begun) / 1000, readBack, status })}\n`
    )
  } finally {
    await local.stop()
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`bench:memory failed: ${error instanceof Error ? error.message : String(error)}\n`)
  process.exitCode = 1
})
