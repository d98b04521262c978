import { spawn, type ChildProcess } from "node:child_process"
import { createWriteStream, mkdirSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { Effect } from "effect"
import type { EventPattern } from "@backup-actions/contracts"
import { SERVICES, patternsFor, topology, type PolicyDocument, type ServiceName } from "@backup-actions/config"
import {
  EMULATOR_ACCOUNT,
  EMULATOR_REGION,
  emulatorClients,
  emulatorEnvironment,
  localDatabaseServersEnvironment,
  localStateDir,
  provision,
  startBackupForwarding,
  startEmulator,
  workspaceRoot,
  type Emulator,
  type ProvisionedStack
} from "@backup-actions/local"
import type { DbServer as LocalMariadb, DbServer as LocalPostgres } from "@backup-actions/local"

/** The services that run locally, each with the patterns of its rules. */
export const LOCAL_SERVICES: ReadonlyArray<{ readonly name: ServiceName; readonly patterns: ReadonlyArray<EventPattern> }> = SERVICES.map((name) => ({
  name,
  patterns: patternsFor(name)
}))

export interface LocalStack {
  readonly emulator: Emulator
  readonly stack: ProvisionedStack
  readonly workDir: string
  /** The environment a service process (or a test) uses to reach this stack. */
  readonly environment: (service: ServiceName) => Record<string, string>
  readonly clients: ReturnType<typeof emulatorClients>
  /** Starts a service's process, with extra environment for this process only (a failpoint, in the fault suite). */
  readonly startService: (service: ServiceName, extraEnvironment?: Record<string, string>) => ChildProcess
  readonly stopService: (service: ServiceName, signal?: NodeJS.Signals) => Promise<void>
  readonly stop: () => Promise<void>
}

/**
 * How the services' Node.js runs. The V8 heap they need is small; without a limit V8 lets
 * old space grow lazily and the process's memory with it. The deployed services get the
 * same flags (NODE_OPTIONS).
 */
export const SERVICE_NODE_FLAGS = ["--max-old-space-size=128"] as const

/**
 * The local database servers given, in the setting the local DatabaseEndpoints stand-in reads:
 * a dump reaches the server of its instance's engine, and an instance of an engine with no local
 * server fails with that reason instead of reaching the wrong one.
 */
const databaseServers = (servers: {
  readonly localPostgres?: Pick<LocalPostgres, "endpoint">
  readonly localMariadb?: Pick<LocalMariadb, "endpoint">
}): Record<string, string> => localDatabaseServersEnvironment({ postgres: servers.localPostgres?.endpoint, mariadb: servers.localMariadb?.endpoint })

/** A service's local entry (tools/src/local-services): its production process, with the local stand-ins. */
const serviceEntry = (service: ServiceName): string => join(workspaceRoot(), "tools", "src", "local-services", `${service}.ts`)

/**
 * The embedded local runtime: moto on a free loopback port, the topology provisioned as
 * CDK would deploy it, the forwarding leg that carries AWS Backup's events from the default
 * bus to the project's bus, and each service as its own process polling its queue.
 */
export const startLocalStack = async (options: {
  readonly name: string
  readonly policy: PolicyDocument
  readonly services?: ReadonlyArray<ServiceName>
  /** Provision the services but leave their processes to the caller (the fault suite starts and kills them itself). */
  readonly startServices?: boolean
  /** Extra environment for every service process (tuning knobs, in tests). */
  readonly serviceEnvironment?: Record<string, string>
  /** A local PostgreSQL server that stands in for restored PostgreSQL instances (the emulator's have no engine). */
  readonly localPostgres?: Pick<LocalPostgres, "endpoint">
  /** A local MariaDB server that stands in for restored MariaDB instances. */
  readonly localMariadb?: Pick<LocalMariadb, "endpoint">
}): Promise<LocalStack> => {
  const emulator = await startEmulator({ name: options.name })
  const clients = emulatorClients(emulator.endpoint)
  const names = topology({ account: EMULATOR_ACCOUNT, region: EMULATOR_REGION })
  const selected = LOCAL_SERVICES.filter((service) => (options.services ?? LOCAL_SERVICES.map((entry) => entry.name)).includes(service.name))
  const stack = await Effect.runPromise(Effect.scoped(provision(names, EMULATOR_REGION, selected).pipe(Effect.provide(clients)))).catch(
    async (error: unknown) => {
      await emulator.stop()
      throw error
    }
  )
  // AWS Backup's events on the default bus reach the bus through the local forwarding leg,
  // with resources[] intact (the emulator's bus-to-bus rule drops it).
  const forwarding = startBackupForwarding(emulator.endpoint, { queueUrl: stack.backupEventsQueue.url, busName: stack.busName })
  const state = localStateDir()
  const workDir = join(state, "work", `${options.name}-${emulator.port}`)
  mkdirSync(join(state, "logs"), { recursive: true })
  mkdirSync(workDir, { recursive: true })
  const environment = (service: ServiceName): Record<string, string> => ({
    ...emulatorEnvironment(emulator.endpoint),
    BACKUP_ACTIONS_BUS: stack.busName,
    BACKUP_ACTIONS_BUCKET: stack.artifactBucket,
    BACKUP_ACTIONS_LEDGER_TABLE: stack.ledgerTable,
    BACKUP_ACTIONS_TOPIC_ARN: stack.notificationTopicArn,
    BACKUP_ACTIONS_QUEUE_URL: stack.queues[service]?.url ?? "",
    BACKUP_ACTIONS_DLQ_URL: stack.queues[service]?.deadLetterUrl ?? "",
    BACKUP_ACTIONS_WORK_DIR: join(workDir, service),
    BACKUP_ACTIONS_POLICY: JSON.stringify(options.policy),
    // A local run is short: report it two seconds after its last outcome.
    BACKUP_ACTIONS_REPORT_QUIET_SECONDS: "2",
    ...databaseServers(options),
    ...options.serviceEnvironment
  })
  const processes = new Map<ServiceName, ChildProcess>()
  const startService = (service: ServiceName, extraEnvironment: Record<string, string> = {}): ChildProcess => {
    const log = createWriteStream(join(state, "logs", `${options.name}-${service}.log`), { flags: "a" })
    const child = spawn(process.execPath, [...SERVICE_NODE_FLAGS, "--import", "tsx", serviceEntry(service)], {
      cwd: workspaceRoot(),
      env: { ...process.env, ...environment(service), ...extraEnvironment },
      stdio: ["ignore", "pipe", "pipe"]
    })
    child.stdout?.pipe(log)
    child.stderr?.pipe(log)
    processes.set(service, child)
    return child
  }
  const stopService = async (service: ServiceName, signal: NodeJS.Signals = "SIGTERM"): Promise<void> => {
    const child = processes.get(service)
    processes.delete(service)
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return
    const exited = new Promise<void>((done) => child.once("exit", () => done()))
    child.kill(signal)
    const timer = setTimeout(() => child.kill("SIGKILL"), 10_000)
    await exited
    clearTimeout(timer)
  }
  if (options.startServices ?? true) for (const service of selected) startService(service.name)
  const description = { endpoint: emulator.endpoint, account: EMULATOR_ACCOUNT, ...stack }
  writeFileSync(join(state, "stack.json"), `${JSON.stringify(description, null, 2)}\n`)
  return {
    emulator,
    stack,
    workDir,
    environment,
    clients,
    startService,
    stopService,
    stop: async () => {
      await Promise.all([...processes.keys()].map((service) => stopService(service)))
      await forwarding.stop()
      await emulator.stop()
    }
  }
}
