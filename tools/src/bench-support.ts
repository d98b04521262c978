/** What the bench's rows share: running a measuring child, the zstd CLI as a reference, a process's peak memory. */
import { spawn } from "node:child_process"
import { existsSync, readFileSync } from "node:fs"
import { workspaceRoot } from "@backup-actions/local"

/** A generous bound for the zstd CLI's run: it is a reference, and a hung one must not hang the bench. */
const ZSTD_TIMEOUT_MS = 10 * 60 * 1000

export interface Measured {
  readonly size: number
  readonly seconds: number
  readonly maxRssBytes: number
  /** The streamer's: the upload alone, then the read-back and its verdict. */
  readonly uploadSeconds?: number
  readonly readBackSeconds?: number
  readonly verified?: string
  /** The streamer's upload settings, which the S3 ceiling uses. */
  readonly partSize?: number
  readonly uploadConcurrency?: number
  /** A ceiling's: the bytes it moved, and (GetSnapshotBlock) the size of the image they belong to. */
  readonly bytes?: number
  readonly imageBytes?: number
  readonly blocks?: number
}

export const runJson = (command: string, args: ReadonlyArray<string>, env: Record<string, string>): Promise<Measured> =>
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

/** `zstd -3 -T0` over the input, timed, its output counted and dropped. */
export const zstdCli = (input: string): Promise<{ readonly seconds: number; readonly size: number }> =>
  new Promise((resolve, reject) => {
    const started = process.hrtime.bigint()
    const child = spawn("zstd", ["-3", "-T0", "-c", "-q", input], { stdio: ["ignore", "pipe", "inherit"] })
    let size = 0
    child.stdout.on("data", (data: Buffer) => (size += data.length))
    const timer = setTimeout(() => child.kill("SIGKILL"), ZSTD_TIMEOUT_MS)
    child.on("error", (error) => {
      clearTimeout(timer)
      reject(error)
    })
    child.on("close", (code, signal) => {
      clearTimeout(timer)
      if (code !== 0) return reject(new Error(`zstd -3 -T0 ended with ${code ?? signal ?? "?"}`))
      resolve({ seconds: Number(process.hrtime.bigint() - started) / 1e9, size })
    })
  })

/** A process's peak resident set so far (VmHWM), before it is stopped. */
export const peakRss = (pid: number | undefined): number => {
  if (pid === undefined) return 0
  const status = readFileSync(`/proc/${pid}/status`, "utf8")
  const kib = /VmHWM:\s+(\d+)\s+kB/.exec(status)?.[1]
  return kib === undefined ? 0 : Number(kib) * 1024
}


/**
 * When a service first logged a line containing `needle` (ms since the epoch), among the lines
 * of its log that contain `subject`; undefined when there is no such line.
 */
export const logLineTimes = (logFile: string, subject: string): ((needle: string) => number | undefined) => {
  const lines = existsSync(logFile) ? readFileSync(logFile, "utf8").split("\n").filter((line) => line.includes(subject)) : []
  return (needle) => {
    const line = lines.find((candidate) => candidate.includes(needle))
    const stamp = line === undefined ? undefined : /timestamp=(\S+)/.exec(line)?.[1]
    return stamp === undefined ? undefined : Date.parse(stamp)
  }
}
