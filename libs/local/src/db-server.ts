import { spawn, type ChildProcess } from "node:child_process"
import { mkdir, mkdtemp, open, readFile, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { DescribeDBInstancesCommand } from "@aws-sdk/client-rds"
import { DescribeParametersCommand, GetParameterCommand } from "@aws-sdk/client-ssm"
import { Clock, Deferred, Duration, Effect, Exit, Option, Schedule, Schema, type Scope } from "effect"
import { Rds, Ssm, awsCall } from "@backup-actions/aws"
import { RESTORED_PASSWORD_PATH, instanceIdOfRestoredPassword } from "@backup-actions/config"
import { runCommand } from "./command"
import { freePort } from "./emulator"

/**
 * A step of a local database server's life failed: finding its programs, its data directory,
 * initialising it, starting it, or running SQL on it. `reason` is the program's own complaint
 * (SQL goes on the client's standard input, never on a command line).
 */
export class DbServerFailed extends Schema.TaggedError<DbServerFailed>()("DbServerFailed", {
  engine: Schema.String,
  step: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `local ${this.engine} server: ${this.step}: ${this.reason}`
  }
}

/** The local server refused a new master password; the next poll tries again. Its answer is not kept: it could quote the password. */
export class PasswordNotApplied extends Schema.TaggedError<PasswordNotApplied>()("PasswordNotApplied", {
  parameter: Schema.String
}) {}

/** Where one server lives: a private directory under the OS temp dir, holding its data, socket, pid file and log. */
export interface ServerSite {
  readonly dir: string
  /** The data directory, inside `dir`. */
  readonly data: string
  readonly log: string
  readonly port: number
  /** The path of one of the engine's programs, as `locate` found them. */
  readonly program: (name: string) => string
}

/** A program and its arguments. */
export interface ServerCommand {
  readonly command: string
  readonly args: ReadonlyArray<string>
}

/**
 * What one engine does its own way. Everything else, from the private directory to the
 * finalizer that stops the server and removes it, is the same for every engine (`startDbServer`).
 */
export interface DbServerKind {
  /** The engine as RDS names it: the server stands in for restored instances of this engine. */
  readonly engine: string
  /** The OS user the server runs as when started by root (the servers refuse to run as root). */
  readonly serverUser: string
  /** A database that every server has, to probe it and to manage accounts from. */
  readonly adminDatabase: string
  /** The signal that shuts the server down cleanly and promptly. */
  readonly stopSignal: NodeJS.Signals
  /** Finds the installed programs, or fails saying what installs them. */
  readonly locate: Effect.Effect<(name: string) => string, DbServerFailed>
  /** Initialises the (empty) data directory. */
  readonly initialise: (site: ServerSite) => ServerCommand
  /** The server itself, in the foreground, listening on the site's port of 127.0.0.1 only. */
  readonly serve: (site: ServerSite) => ServerCommand
  /** Where the server writes its process id. */
  readonly pidFile: (site: ServerSite) => string
  /** The client, as the superuser over the server's own socket, reading SQL from its standard input. */
  readonly client: (site: ServerSite, database: string) => ServerCommand
  /** The statement that gives an account a new password, as RDS applying a new master password would. */
  readonly setPasswordSql: (user: string, password: string) => string
}

/** A running local server, stopped and removed when the scope it was started in closes. */
export interface DbServer {
  readonly kind: DbServerKind
  readonly host: string
  readonly port: number
  /** `host:port`, this server's part of the local stack's database-server setting. */
  readonly endpoint: string
  readonly dataDir: string
  /**
   * Runs SQL as the superuser over the server's socket, the statements (or a file's content) on
   * the client's standard input; returns the client's output. Killed after `timeout` (2 minutes).
   */
  readonly sql: (
    database: string,
    statement: string,
    options?: { readonly file?: string; readonly timeout?: Duration.DurationInput }
  ) => Effect.Effect<string, DbServerFailed>
}

/** Long enough for initdb or mariadb-install-db on a slow, shared machine. */
const INITIALISE_TIMEOUT = Duration.minutes(2)
/** How long a started server may take to answer before the start counts as failed. */
const READY_WITHIN = Duration.seconds(60)
const PROBE_TIMEOUT = Duration.seconds(5)
const SQL_TIMEOUT = Duration.minutes(2)
/** How long a server may take to shut down on its stop signal before it is killed. */
const STOP_WITHIN = Duration.seconds(20)

const LOG_FILE = "server.log"

const isRoot = (): boolean => process.getuid?.() === 0

/** A command as the server's user when we are root. */
const asServerUser = (kind: DbServerKind, command: ServerCommand): ServerCommand =>
  isRoot() ? { command: "runuser", args: ["-u", kind.serverUser, "--", command.command, ...command.args] } : command

/** Runs a command to its end within `timeout`, its failure named by the engine and the step. */
const run = (kind: DbServerKind, step: string, command: ServerCommand, options: { readonly timeout: Duration.DurationInput; readonly input?: string | Buffer }) =>
  runCommand(command.command, command.args, options).pipe(Effect.mapError((error) => new DbServerFailed({ engine: kind.engine, step, reason: error.reason })))

const failedTo = (kind: DbServerKind, step: string) => (error: unknown) =>
  new DbServerFailed({ engine: kind.engine, step, reason: error instanceof Error ? error.message : String(error) })

/**
 * A private directory for the server outside the checkout (the server's user must reach it, and
 * a clone may sit in a directory only its owner can enter), owned by that user when we are root.
 * Removed, whatever is in it, when the scope closes.
 */
const privateDirectory = (kind: DbServerKind, name: string) =>
  Effect.acquireRelease(
    Effect.tryPromise({
      try: async () => {
        const dir = await mkdtemp(join(tmpdir(), `backup-actions-${kind.engine}-${name}-`))
        await mkdir(join(dir, "data"))
        // Made here, so that it is the server's user's too: a server may open it by name.
        await writeFile(join(dir, LOG_FILE), "")
        return dir
      },
      catch: failedTo(kind, "make its data directory")
    }).pipe(
      Effect.tap((dir) =>
        isRoot() ? run(kind, "give its data directory to its user", { command: "chown", args: ["-R", `${kind.serverUser}:${kind.serverUser}`, dir] }, { timeout: "30 seconds" }) : Effect.void
      )
    ),
    (dir) => Effect.promise(() => rm(dir, { recursive: true, force: true }))
  )

/** The last lines of the server's log, for a start that failed. */
const logTail = (site: ServerSite) =>
  Effect.promise(() =>
    readFile(site.log, "utf8").then(
      (text) => text.trim().split("\n").slice(-5).join(" | "),
      () => "no server log"
    )
  )

/** Whether a process still runs: read from /proc, where an exited child that is not reaped yet shows as a zombie. */
const isAlive = (pid: number) =>
  Effect.promise(() =>
    readFile(join("/proc", String(pid), "stat"), "utf8").then(
      (stat) => {
        const state = stat.slice(stat.lastIndexOf(")") + 2).charAt(0)
        return state !== "" && state !== "Z" && state !== "X"
      },
      () => false
    )
  )

/** Sends `signal` and waits up to `within` for the process to be gone; true when it is. */
const signalAndWait = (pid: number, signal: NodeJS.Signals, within: Duration.DurationInput) =>
  Effect.gen(function* () {
    if (!(yield* isAlive(pid))) return true
    // It may be gone between the check and the signal.
    yield* Effect.try(() => process.kill(pid, signal)).pipe(Effect.ignore)
    const deadline = (yield* Clock.currentTimeMillis) + Duration.toMillis(Duration.decode(within))
    while (yield* isAlive(pid)) {
      if ((yield* Clock.currentTimeMillis) > deadline) return false
      yield* Effect.sleep(Duration.millis(50))
    }
    return true
  })

/** The server's own process id, from its pid file (the spawned process is `runuser` when we are root). */
const recordedPid = (kind: DbServerKind, site: ServerSite) =>
  Effect.promise(() =>
    readFile(kind.pidFile(site), "utf8").then(
      (text) => Option.liftPredicate(Number(text.split("\n")[0]?.trim()), (pid) => Number.isInteger(pid) && pid > 0),
      () => Option.none<number>()
    )
  )

/** Stops the server with its clean-shutdown signal, kills it when that takes too long, and waits for the spawned process. */
const stopServer = (kind: DbServerKind, site: ServerSite, child: ChildProcess) =>
  Effect.gen(function* () {
    const recorded = yield* recordedPid(kind, site)
    const pids = [...Option.toArray(recorded), ...(child.pid === undefined ? [] : [child.pid])]
    for (const pid of pids) {
      const stopped = yield* signalAndWait(pid, kind.stopSignal, STOP_WITHIN)
      if (!stopped) yield* signalAndWait(pid, "SIGKILL", "5 seconds")
    }
  })

/** The spawned server, and how it ended if it did (it ends before it answers only when it could not start). */
interface SpawnedServer {
  readonly child: ChildProcess
  readonly ended: Deferred.Deferred<string>
}

/**
 * Starts the server in the background, its output in the site's log; stopped when the scope
 * closes. Its end is watched from the moment it is spawned: an `error` event nobody listens to
 * would end this process.
 */
const spawnServer = (kind: DbServerKind, site: ServerSite) =>
  Effect.acquireRelease(
    Effect.acquireUseRelease(
      Effect.tryPromise({ try: () => open(site.log, "a"), catch: failedTo(kind, "open its log") }),
      (log) =>
        Effect.gen(function* () {
          const ended = yield* Deferred.make<string>()
          const { command, args } = asServerUser(kind, kind.serve(site))
          const child = yield* Effect.try({
            try: () => spawn(command, [...args], { cwd: site.dir, stdio: ["ignore", log.fd, log.fd], detached: true }),
            catch: failedTo(kind, "start")
          })
          child.once("exit", (code, signal) => Deferred.unsafeDone(ended, Exit.succeed(`exited (${code ?? signal ?? "?"})`)))
          child.once("error", (error) => Deferred.unsafeDone(ended, Exit.succeed(`could not run ${command}: ${error.message}`)))
          child.unref()
          return { child, ended } satisfies SpawnedServer
        }),
      (log) => Effect.promise(() => log.close())
    ),
    (server) => stopServer(kind, site, server.child)
  )

/** Fails once the spawned server ends, with how and the end of its log. */
const endOf = (kind: DbServerKind, site: ServerSite, server: SpawnedServer) =>
  Effect.gen(function* () {
    const how = yield* Deferred.await(server.ended)
    const log = yield* logTail(site)
    return yield* new DbServerFailed({ engine: kind.engine, step: "start", reason: `${how} before it answered: ${log}` })
  })

/**
 * Starts a local server of the engine: on a free port of 127.0.0.1, in a private data directory,
 * as the engine's own user when we are root. Only the superuser logs in over the server's socket
 * (for seeding and checking); every other account logs in over TCP with a password, as on RDS.
 * Succeeds once the server answers (within a minute); the scope's closing stops it (cleanly,
 * else killed) and removes its directory.
 */
export const startDbServer = (kind: DbServerKind, options: { readonly name: string }): Effect.Effect<DbServer, DbServerFailed, Scope.Scope> =>
  Effect.gen(function* () {
    const program = yield* kind.locate
    const port = yield* Effect.promise(() => freePort())
    const dir = yield* privateDirectory(kind, options.name)
    const site: ServerSite = { dir, data: join(dir, "data"), log: join(dir, LOG_FILE), port, program }
    yield* run(kind, "initialise", asServerUser(kind, kind.initialise(site)), { timeout: INITIALISE_TIMEOUT })
    const server = yield* spawnServer(kind, site)
    const sql: DbServer["sql"] = (database, statement, sqlOptions = {}) =>
      Effect.gen(function* () {
        const file = sqlOptions.file
        const input = file === undefined ? statement : yield* Effect.tryPromise({ try: () => readFile(file), catch: failedTo(kind, `read ${file}`) })
        return yield* run(kind, `run SQL on ${database}`, kind.client(site, database), { timeout: sqlOptions.timeout ?? SQL_TIMEOUT, input })
      })
    const answers = sql(kind.adminDatabase, "SELECT 1;", { timeout: PROBE_TIMEOUT }).pipe(
      Effect.retry(Schedule.spaced(Duration.millis(100)).pipe(Schedule.upTo(READY_WITHIN))),
      Effect.catchAll(() =>
        Effect.flatMap(logTail(site), (log) => new DbServerFailed({ engine: kind.engine, step: "start", reason: `did not answer within ${Duration.format(READY_WITHIN)}: ${log}` }))
      )
    )
    yield* Effect.raceFirst(answers, endOf(kind, site, server))
    return { kind, host: "127.0.0.1", port, endpoint: `127.0.0.1:${port}`, dataDir: dir, sql }
  })

/**
 * The local stand-in for RDS applying a new master password: the restorer keeps it in SSM under
 * RESTORED_PASSWORD_PATH and sets it with ModifyDBInstance, which the emulator only records. This
 * loop gives `user` on the server each password that appears there for an instance of the
 * server's engine (the statement on the client's stdin, never on a command line), so that the
 * streamer logs in exactly as it would on AWS; other engines' instances are left to their own
 * servers. `onPassword` sees each password applied, for tests that check no log ever shows one.
 */
export const syncMasterPasswords = (server: DbServer, options: { readonly user: string; readonly onPassword?: (password: string) => void }) =>
  Effect.gen(function* () {
    const ssm = yield* Ssm
    const rds = yield* Rds
    const handled = new Map<string, number>()
    const engineOf = (instanceId: string) =>
      awsCall("rds:DescribeDBInstances", (abortSignal) => rds.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: instanceId }), { abortSignal })).pipe(
        Effect.map((found) => found.DBInstances?.[0]?.Engine),
        Effect.catchIf(
          (error) => error.kind === "not-found",
          () => Effect.succeed(undefined)
        )
      )
    const poll = Effect.gen(function* () {
      const found = yield* awsCall("ssm:DescribeParameters", (abortSignal) =>
        ssm.send(new DescribeParametersCommand({ ParameterFilters: [{ Key: "Path", Option: "Recursive", Values: [RESTORED_PASSWORD_PATH] }] }), { abortSignal })
      )
      for (const parameter of found.Parameters ?? []) {
        const name = parameter.Name ?? ""
        if (handled.get(name) === parameter.Version) continue
        const instanceId = instanceIdOfRestoredPassword(name)
        const engine = instanceId === undefined ? undefined : yield* engineOf(instanceId)
        if (engine === server.kind.engine) {
          const value = yield* awsCall("ssm:GetParameter", (abortSignal) => ssm.send(new GetParameterCommand({ Name: name, WithDecryption: true }), { abortSignal }))
          const password = value.Parameter?.Value ?? ""
          options.onPassword?.(password)
          yield* server.sql(server.kind.adminDatabase, server.kind.setPasswordSql(options.user, password)).pipe(Effect.mapError(() => new PasswordNotApplied({ parameter: name })))
        }
        handled.set(name, parameter.Version ?? 0)
      }
    }).pipe(
      Effect.catchTags({
        AwsError: (error) => Effect.logWarning(`password sync: ${error.message}`),
        PasswordNotApplied: (error) => Effect.logWarning(`password sync: the local ${server.kind.engine} server did not take the password in ${error.parameter}`)
      })
    )
    return yield* Effect.repeat(poll, Schedule.spaced(Duration.millis(100)))
  })
