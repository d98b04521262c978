/**
 * `npm run bench`: the streamer's data path against the original job's, on the same emulator,
 * in the same run. For each input size it measures
 *   - baseline:  tar -cz (gzip -6) piped into one streaming lib-storage upload
 *   - streamer:  4 MiB chunks, zstd frames compressed in parallel, multipart with SHA-256 per part
 *   - null sink: the streamer's read and compression alone (no upload), the CPU-bound rate
 *   - read-back: the streamer's content verification of what it uploaded (ranged GETs,
 *     zstd -d, each range's SHA-256 against the manifest), which runs before a source may go
 * and prints throughput, its ratio to the baseline, each process's peak RSS, and the
 * read-back's cost in seconds per GiB.
 * Sizes in GiB come from BENCH_SIZES_GIB (default "1,4").
 */
import { execFileSync, spawn } from "node:child_process"
import { mkdirSync, rmSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { localStateDir, workspaceRoot } from "@backup-actions/local"
import { writeDiskLikeInput } from "./disk-like-input"
import { formatBytes, table } from "./report"
import { SERVICE_NODE_FLAGS, startLocalStack } from "./stack"

const MiB = 1024 * 1024
const sizes = (process.env["BENCH_SIZES_GIB"] ?? "1,4").split(",").map((value) => Number(value.trim())).filter((value) => value > 0)

interface Measured {
  readonly size: number
  readonly seconds: number
  readonly maxRssBytes: number
  /** The streamer's: the upload alone, then the read-back and its verdict. */
  readonly uploadSeconds?: number
  readonly readBackSeconds?: number
  readonly verified?: string
}

const runJson = (command: string, args: ReadonlyArray<string>, env: Record<string, string>): Promise<Measured> =>
  new Promise((resolve, reject) => {
    const child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "inherit"], cwd: workspaceRoot() })
    let output = ""
    child.stdout.on("data", (data: Buffer) => (output += data.toString()))
    child.on("close", (code) => {
      if (code !== 0) return reject(new Error(`${command} ${args.join(" ")} exited with ${code}`))
      const last = output.trim().split("\n").pop() ?? "{}"
      resolve(JSON.parse(last) as Measured)
    })
  })

const main = async (): Promise<void> => {
  // The streamer runs as it ships: bundled, on plain Node.js.
  execFileSync(process.execPath, ["tools/build/bundle.mjs", "apps/streamer"], { cwd: workspaceRoot(), stdio: "ignore" })
  const archiveFile = join(workspaceRoot(), "dist", "apps", "streamer", "archive-file.js")
  const dir = join(localStateDir(), "bench")
  mkdirSync(dir, { recursive: true })
  const local = await startLocalStack({ name: "bench", policy: { rules: [] }, services: [] })
  const env = { ...local.environment("streamer") }
  const bucket = local.stack.artifactBucket
  const node = process.execPath
  const rows: Array<Array<string>> = []
  const results: Array<Record<string, unknown>> = []
  const readBack: Array<string> = []
  try {
    for (const gib of sizes) {
      const input = join(dir, `input-${gib}GiB.img`)
      const bytes = gib * 1024 * MiB
      process.stdout.write(`generating ${gib} GiB of disk-like input...\n`)
      writeDiskLikeInput(input, bytes)
      process.stdout.write(`baseline: tar -cz | one streaming upload...\n`)
      const baselineStart = process.hrtime.bigint()
      const baseline = await runJson(
        "bash",
        ["-o", "pipefail", "-c", `tar -czf - -C '${dir}' '${`input-${gib}GiB.img`}' | '${node}' --import tsx tools/src/bench-baseline-upload.ts --bucket '${bucket}' --key 'bench/baseline-${gib}.tar.gz'`],
        env
      )
      const baselineSeconds = Number(process.hrtime.bigint() - baselineStart) / 1e9
      process.stdout.write(`streamer: parallel zstd frames, multipart upload...\n`)
      const streamer = await runJson(node, [...SERVICE_NODE_FLAGS, archiveFile, "--source", input, "--bucket", bucket, "--key", `bench/streamer-${gib}.img.zst`], env)
      process.stdout.write(`streamer with a null sink...\n`)
      const nullSink = await runJson(node, [...SERVICE_NODE_FLAGS, archiveFile, "--source", input, "--sink", "null"], env)
      if (streamer.verified !== "content") throw new Error(`the streamer's archive of ${gib} GiB was not verified to its content (${String(streamer.verified)})`)
      const rate = (seconds: number) => bytes / MiB / seconds
      const base = rate(baselineSeconds)
      const uploadSeconds = streamer.uploadSeconds ?? streamer.seconds
      const readBackSeconds = streamer.readBackSeconds ?? 0
      for (const [name, measured, seconds] of [
        ["baseline (tar -cz | upload)", baseline, baselineSeconds],
        ["streamer (zstd, multipart)", streamer, uploadSeconds],
        ["streamer, null sink", nullSink, nullSink.seconds],
        ["read-back, content verified", streamer, readBackSeconds]
      ] as const) {
        rows.push([
          `${gib} GiB`,
          name,
          seconds.toFixed(1),
          rate(seconds).toFixed(1),
          `${(rate(seconds) / base).toFixed(1)}x`,
          formatBytes(measured.size),
          formatBytes(measured.maxRssBytes)
        ])
        results.push({ inputGiB: gib, variant: name, seconds, mibPerSecond: rate(seconds), ratioToBaseline: rate(seconds) / base, storedBytes: measured.size, peakRssBytes: measured.maxRssBytes })
      }
      readBack.push(`${gib} GiB: read-back ${(readBackSeconds / gib).toFixed(1)} s per GiB, ${((readBackSeconds / uploadSeconds) * 100).toFixed(0)}% of the upload's time`)
      results.push({ inputGiB: gib, variant: "read-back cost", secondsPerGiB: readBackSeconds / gib, ratioToUpload: readBackSeconds / uploadSeconds })
      rmSync(input, { force: true })
    }
  } finally {
    await local.stop()
  }
  const cpu = execFileSync("sh", ["-c", "nproc; grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"]).toString().trim().split("\n")
  process.stdout.write(`\n${table(["input", "variant", "seconds", "MiB/s", "vs baseline", "stored", "peak RSS"], rows)}\n`)
  process.stdout.write(`\n${readBack.join("\n")}\n`)
  process.stdout.write(`\n${cpu[0]} cores,${cpu[1] ?? ""}; peak RSS is the uploading process's (the baseline's tar and gzip are separate processes).\n`)
  writeFileSync(join(dir, "results.json"), `${JSON.stringify(results, null, 2)}\n`)
}

main().catch((error: unknown) => {
  process.stderr.write(`bench failed: ${error instanceof Error ? error.message : String(error)}\n`)
  process.exitCode = 1
})
