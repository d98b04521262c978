/**
 * The bench's volume-mode row: an ext4 image built from a directory of real files on this
 * machine (BENCH_TREE, /usr/share by default), archived by the running services in volume
 * mode (restored volume, mounted, one tar streamed through the compressor to S3, its manifest
 * made from the same stream), against `tar -cf - <mount> | zstd -3 -T0 > /dev/null` on the
 * same filesystem, measured in the same run.
 */
import { execFileSync, spawnSync } from "node:child_process"
import { mkdirSync, rmSync } from "node:fs"
import { join } from "node:path"
import type { Effect, Layer, Scope } from "effect"
import { sendRecoveryPointCompleted, snapshotArn, waitForStep } from "./backup-events"
import { logLineTimes, peakRss, runJson, zstdCli, type Measured } from "./bench-support"
import { makeExt4Image } from "./seed"
import { putImageAsSnapshot } from "./snapshot-writer"
import { SERVICE_NODE_FLAGS, type LocalStack } from "./stack"

const MiB = 1024 * 1024

/** The vault whose recovery points the bench's policy archives in volume mode. */
export const VOLUME_BENCH_VAULT = "bench-volume"

/** The directory of real files the image is built from. */
export const benchTree = (): string => process.env["BENCH_TREE"] ?? "/usr/share"

/** A bound for each reference command: it is a reference, and a hung one must not hang the bench. */
const REFERENCE_TIMEOUT_MS = 20 * 60 * 1000

export interface VolumeBench {
  readonly tree: string
  readonly entries: number
  readonly fileBytes: number
  readonly imageBytes: number
  /** The reference: `tar -cf - . | zstd -3 -T0 > /dev/null` on the mounted image. */
  readonly referenceSeconds: number
  /** The streamer's tar, compression and upload, from its log: "archiving ... filesystems" to "archived ... entries". */
  readonly streamerSeconds: number
  /** The whole step in the ledger (restore of the volume, mount, tar, upload, read-back). */
  readonly stepSeconds: number
  readonly storedBytes: number
  readonly peakRssBytes: number
  readonly verified: string
  /** The image file itself (real files, and the filesystem's metadata and free space) through the null sink, and through `zstd -3 -T0`. */
  readonly imageNullSink: Measured
  readonly imageZstd: { readonly seconds: number; readonly size: number }
}

/** Drops the page cache, so that the reference and the streamer both read the filesystem from the disk. */
const dropCaches = (): void => {
  execFileSync("sync", [], { timeout: 120_000 })
  spawnSync("sh", ["-c", "echo 3 > /proc/sys/vm/drop_caches"], { timeout: 60_000 })
}

const timed = (command: string, args: ReadonlyArray<string>): number => {
  const started = process.hrtime.bigint()
  execFileSync(command, args, { stdio: ["ignore", "ignore", "inherit"], timeout: REFERENCE_TIMEOUT_MS })
  return Number(process.hrtime.bigint() - started) / 1e9
}

/** Seconds between the first log lines about `subject` that contain each needle. */
const logSpan = (logFile: string, subject: string, from: string, to: string): number | undefined => {
  const at = logLineTimes(logFile, subject)
  const start = at(from)
  const end = at(to)
  return start === undefined || end === undefined ? undefined : (end - start) / 1000
}

export const benchVolumeMode = async (
  local: LocalStack,
  run: <A, E>(effect: Effect.Effect<A, E, Layer.Layer.Success<LocalStack["clients"]> | Scope.Scope>) => Promise<A>,
  options: {
    readonly dir: string
    /** The running streamer's log, whose lines time its tar and upload. */
    readonly streamerLog: string
    /** The bundled `archive-file`, for the null sink over the image, and its environment. */
    readonly archiveFile: string
    readonly env: Record<string, string>
  }
): Promise<VolumeBench> => {
  const { dir, streamerLog } = options
  const tree = benchTree()
  const image = join(dir, "real-files.ext4")
  const mountPoint = join(dir, "real-files-mount")
  const used = Number(execFileSync("du", ["-sb", "--one-file-system", tree], { encoding: "utf8", timeout: REFERENCE_TIMEOUT_MS }).split("\t")[0])
  const entries = Number(execFileSync("sh", ["-c", 'find "$1" -xdev | wc -l', "sh", tree], { encoding: "utf8", timeout: REFERENCE_TIMEOUT_MS }).trim())
  // Room for the filesystem's own metadata and a quarter spare.
  const imageMiB = Math.ceil((used * 1.25 + entries * 4096) / MiB) + 64
  process.stdout.write(`building an ext4 image of ${tree} (${entries} entries, ${(used / MiB).toFixed(0)} MiB)...\n`)
  makeExt4Image(tree, image, imageMiB)
  mkdirSync(mountPoint, { recursive: true })
  let referenceSeconds: number
  try {
    execFileSync("mount", ["-o", "loop,ro,noload", image, mountPoint], { timeout: 60_000 })
    dropCaches()
    process.stdout.write(`reference: tar -cf - . | zstd -3 -T0 > /dev/null on the mounted image...\n`)
    referenceSeconds = timed("bash", ["-o", "pipefail", "-c", 'tar -cf - -C "$1" . | zstd -3 -T0 -q > /dev/null', "bash", mountPoint])
  } finally {
    spawnSync("umount", [mountPoint], { timeout: 60_000 })
    rmSync(mountPoint, { recursive: true, force: true })
  }
  process.stdout.write(`streamer with a null sink over the image, then zstd -3 -T0 over it...\n`)
  const imageNullSink = await runJson(process.execPath, [...SERVICE_NODE_FLAGS, options.archiveFile, "--source", image, "--sink", "null"], options.env)
  const imageZstd = await zstdCli(image)
  process.stdout.write(`writing the image as an EBS snapshot...\n`)
  const snapshot = await run(putImageAsSnapshot(image, `backup-actions bench real files`))
  rmSync(image, { force: true })
  dropCaches()
  process.stdout.write(`volume mode: the services restore, mount, tar and upload it...\n`)
  local.startService("restorer")
  const streamer = local.startService("streamer")
  try {
    await run(sendRecoveryPointCompleted({ snapshotId: snapshot.snapshotId, vault: VOLUME_BENCH_VAULT }))
    const archived = await run(waitForStep(local.stack.ledgerTable, snapshotArn(snapshot.snapshotId), "archive:volume", "60 minutes"))
    const peakRssBytes = peakRss(streamer.pid)
    const outcome = (archived["outcome"] ?? {}) as { readonly durationMs?: number; readonly bytesRead?: number; readonly bytesStored?: number; readonly verified?: string }
    if (archived["status"] !== "succeeded" || outcome.verified !== "content") {
      throw new Error(`the volume-mode archive of ${tree} did not succeed verified to its content: ${String(archived["reason"] ?? outcome.verified)}`)
    }
    const stepSeconds = (outcome.durationMs ?? 0) / 1000
    const streamerSeconds = logSpan(streamerLog, snapshot.snapshotId, " filesystems and ", " bytes in files, ") ?? stepSeconds
    return {
      tree,
      entries,
      fileBytes: used,
      imageBytes: snapshot.volumeBytes,
      referenceSeconds,
      streamerSeconds,
      stepSeconds,
      storedBytes: outcome.bytesStored ?? 0,
      peakRssBytes,
      verified: outcome.verified,
      imageNullSink,
      imageZstd
    }
  } finally {
    await local.stopService("streamer")
    await local.stopService("restorer")
  }
}
