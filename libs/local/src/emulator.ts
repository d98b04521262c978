import { spawn, type ChildProcess } from "node:child_process"
import { createWriteStream, existsSync, mkdirSync } from "node:fs"
import { createServer } from "node:net"
import { join } from "node:path"
import { Effect, Layer, Option } from "effect"
import { AllClientsLive, AwsConfig } from "@backup-actions/aws"
import { localStateDir, workspaceRoot } from "./workspace"

/** A running moto_server on a loopback port. */
export interface Emulator {
  readonly endpoint: string
  readonly port: number
  readonly logFile: string
  readonly stop: () => Promise<void>
}

export const EMULATOR_REGION = "us-east-1"
export const EMULATOR_ACCOUNT = "123456789012"

/** Credentials the emulator accepts; they never reach AWS. */
export const EMULATOR_CREDENTIALS = { accessKeyId: "testing", secretAccessKey: "testing" } as const

/** A TCP port on the loopback interface that nothing listens on right now. */
export const freePort = (): Promise<number> =>
  new Promise((resolvePort, reject) => {
    const server = createServer()
    server.unref()
    server.on("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      server.close(() => resolvePort(port))
    })
  })

const motoBinary = (): string => {
  const binary = join(workspaceRoot(), ".venv", "bin", "moto_server")
  if (!existsSync(binary)) {
    throw new Error(`moto_server is not installed at ${binary}: run \`npm run setup\` (the demo and test scripts do it for you)`)
  }
  return binary
}

const waitUntilReady = async (endpoint: string, child: ChildProcess, logFile: string): Promise<void> => {
  const deadline = Date.now() + 60_000
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`moto_server exited with code ${child.exitCode}; see ${logFile}`)
    try {
      const response = await fetch(`${endpoint}/moto-api/`, { signal: AbortSignal.timeout(1_000) })
      if (response.ok) return
    } catch {
      // not listening yet
    }
    await new Promise((wake) => setTimeout(wake, 100))
  }
  throw new Error(`moto_server did not answer on ${endpoint} within 60 s; see ${logFile}`)
}

const running = new Set<ChildProcess>()
const killAll = () => {
  for (const child of running) child.kill("SIGKILL")
}
process.once("exit", killAll)
// A signal that nobody else handles ends the process without "exit": stop the emulators
// first, then let the signal do what it would have done.
for (const signal of ["SIGTERM", "SIGHUP"] as const) {
  process.once(signal, () => {
    killAll()
    if (process.listenerCount(signal) === 0) process.kill(process.pid, signal)
  })
}

/** Starts moto_server on a free loopback port and waits until it answers. */
export const startEmulator = async (options: { readonly name?: string } = {}): Promise<Emulator> => {
  const port = await freePort()
  const logDir = join(localStateDir(), "logs")
  mkdirSync(logDir, { recursive: true })
  const logFile = join(logDir, `moto-${options.name ?? "emulator"}-${port}.log`)
  const log = createWriteStream(logFile)
  const child = spawn(motoBinary(), ["-H", "127.0.0.1", "-p", String(port)], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, MOTO_ALLOW_NONEXISTENT_REGION: "true", AWS_DEFAULT_REGION: EMULATOR_REGION }
  })
  running.add(child)
  child.stdout?.pipe(log)
  child.stderr?.pipe(log)
  const endpoint = `http://127.0.0.1:${port}`
  const stop = async (): Promise<void> => {
    running.delete(child)
    if (child.exitCode !== null || child.signalCode !== null) return
    const exited = new Promise<void>((done) => child.once("exit", () => done()))
    child.kill("SIGTERM")
    const timer = setTimeout(() => child.kill("SIGKILL"), 3_000)
    await exited
    clearTimeout(timer)
  }
  try {
    await waitUntilReady(endpoint, child, logFile)
  } catch (error) {
    await stop()
    throw error
  }
  return { endpoint, port, logFile, stop }
}

/** The emulator as a scoped resource: started on acquire, stopped when the scope closes. */
export const emulatorResource = (options: { readonly name?: string } = {}) =>
  Effect.acquireRelease(
    Effect.promise(() => startEmulator(options)),
    (emulator) => Effect.promise(() => emulator.stop())
  )

/**
 * The environment that points a process's AWS clients at an emulator: the SDK's own
 * AWS_ENDPOINT_URL (which the AWS CLI reads too), the region and the emulator's credentials.
 * S3 addresses buckets by path there by itself, the endpoint being an IP address.
 */
export const emulatorEnvironment = (endpoint: string): Record<string, string> => ({
  AWS_ENDPOINT_URL: endpoint,
  AWS_REGION: EMULATOR_REGION,
  AWS_ACCESS_KEY_ID: EMULATOR_CREDENTIALS.accessKeyId,
  AWS_SECRET_ACCESS_KEY: EMULATOR_CREDENTIALS.secretAccessKey
})

/** AWS client settings that point at an emulator. */
export const emulatorAwsConfig = (endpoint: string) =>
  AwsConfig.layer({
    region: EMULATOR_REGION,
    endpoint: Option.some(endpoint),
    credentials: Option.some(EMULATOR_CREDENTIALS)
  })

/** Every AWS client, pointed at an emulator. */
export const emulatorClients = (endpoint: string) => Layer.provide(AllClientsLive, emulatorAwsConfig(endpoint))
