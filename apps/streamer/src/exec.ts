import { spawn, type ChildProcess } from "node:child_process"
import { Socket } from "node:net"
import { basename } from "node:path"
import { PassThrough, finished, pipeline, type Readable } from "node:stream"
import { Clock, Config, Duration, Effect, Option, Redacted, Schema, type Scope } from "effect"
import { firedAction } from "@backup-actions/aws"

export class CommandFailed extends Schema.TaggedError<CommandFailed>()("CommandFailed", {
  command: Schema.String,
  exitCode: Schema.NullOr(Schema.Number),
  stderr: Schema.String
}) {}

/** A spawned tool ran past one of its limits and was killed. */
export class ToolTimedOut extends Schema.TaggedError<ToolTimedOut>()("ToolTimedOut", {
  tool: Schema.String,
  /** Which limit ran out: the whole run's time, or the time without any output. */
  limit: Schema.Literal("runtime", "inactivity"),
  /** The limit, as "2m" or "30m". */
  timeout: Schema.String,
  /** The tool's last stderr lines on one line, secrets taken out. */
  stderr: Schema.String
}) {
  override get message(): string {
    const what = this.limit === "runtime" ? `ran longer than ${this.timeout}` : `wrote nothing for ${this.timeout}`
    return `${this.tool} ${what} and was killed${this.stderr === "" ? "" : `; its last stderr: ${this.stderr}`}`
  }
}

/**
 * How long a tool may take. Give every tool at least one limit: a short command a limit on its
 * whole run, a streaming tool a limit on its silence, never on its whole run (a 2 TiB tar
 * legitimately runs for hours).
 */
export interface ToolLimits {
  /** The longest the tool may run in all. */
  readonly runtime?: Duration.DurationInput
  /**
   * The longest the tool may go without writing to stdout or stderr while its output is
   * wanted. Time in which its output waits unread (the upload is behind) does not count.
   */
  readonly inactivity?: Duration.DurationInput
}

/** Commands that answer at once (lsblk, blkid, blockdev, sfdisk, losetup, mount, umount, a database listing). */
export const SHORT_COMMAND_TIMEOUT = Duration.minutes(2)

/**
 * Silence allowed to a streaming tool (tar, pg_dump, mysqldump, mariadb-dump). Generous: with
 * `--sparse`, tar reads a whole file for its holes before it writes the file's header, and
 * pg_dump locks and reads the catalog of every table before its first line.
 */
export const STREAM_INACTIVITY_TIMEOUT = Duration.minutes(30)

/** Between SIGTERM and SIGKILL when a tool is stopped, and the longest wait for its exit after SIGKILL. */
export const KILL_GRACE = Duration.seconds(10)

export const SHORT_COMMAND: ToolLimits = { runtime: SHORT_COMMAND_TIMEOUT }
export const STREAMING_TOOL: ToolLimits = { inactivity: STREAM_INACTIVITY_TIMEOUT }

/**
 * The limits of a streaming tool in this process: STREAMING_TOOL, or the silence that
 * BACKUP_ACTIONS_TOOL_INACTIVITY_SECONDS allows (the fault suite, whose hung tool must be
 * killed within its wait). A value that is not a positive integer is a defect.
 */
export const streamingToolLimits: Effect.Effect<ToolLimits> = Config.integer("BACKUP_ACTIONS_TOOL_INACTIVITY_SECONDS").pipe(
  Config.validate({ message: "must be a positive number of seconds", validation: (seconds) => seconds > 0 }),
  Config.option,
  Effect.orDie,
  Effect.map(Option.match({ onNone: () => STREAMING_TOOL, onSome: (seconds): ToolLimits => ({ inactivity: Duration.seconds(seconds) }) }))
)

export interface SpawnRequest {
  readonly command: string
  /** Never a secret: arguments are visible to every user of the machine in /proc and `ps`. */
  readonly args: ReadonlyArray<string>
  readonly limits: ToolLimits
  /** The tool's environment (the service's own when absent); a password goes here. */
  readonly env?: NodeJS.ProcessEnv
  /** Values taken out of any stderr that is reported. */
  readonly secrets?: ReadonlyArray<Redacted.Redacted<string>>
  /** Between SIGTERM and SIGKILL when the tool is stopped; KILL_GRACE when absent. */
  readonly killGrace?: Duration.DurationInput
  /** The tool's standard input, piped in with backpressure; none when absent. A tool that exits early ends it. */
  readonly stdin?: Readable
}

/** How a tool ended: its exit code, the signal that ended it, or why it could not start. */
export interface ToolExit {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly startError?: Error
}

export interface RunningTool {
  /** The command's file name, as errors and failpoints name it. */
  readonly tool: string
  readonly pid: number | undefined
  /** Read it (or let it wait: the tool is then blocked, which its inactivity limit allows for). */
  readonly stdout: Readable
  /** Its stderr so far: the last 16 KiB, unredacted. */
  readonly stderr: () => string
  /** Waits for the tool's exit: how it ended, or ToolTimedOut when a limit ran out and it was killed. */
  readonly exit: Effect.Effect<ToolExit, ToolTimedOut>
}

/** Keeps at most `limit` characters of a growing text: only its end is ever reported. */
export const appendBounded = (text: string, more: string, limit = 16_384): string => {
  const joined = text + more
  return joined.length > limit ? joined.slice(joined.length - limit) : joined
}

/** The last lines of a tool's stderr, on one line, with the secrets taken out. */
export const lastLines = (stderr: string, secrets: ReadonlyArray<Redacted.Redacted<string>> = [], lines = 5): string => {
  const redacted = secrets
    .map((secret) => Redacted.value(secret))
    .filter((secret) => secret !== "")
    .reduce((text, secret) => text.split(secret).join("<redacted>"), stderr)
  return redacted
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "")
    .slice(-lines)
    .join(" | ")
}

/** A started tool as the helper tracks it: its process (the leader of a process group of its own), its output and its exit. */
interface Child {
  readonly process: ChildProcess
  /** The tool's end of its stdout: what it wrote and what waits unread in it. */
  readonly pipe: Readable
  /** The output, for the reader. */
  readonly stdout: Readable
  readonly exited: Promise<ToolExit>
  readonly hasExited: () => boolean
  /** Bytes the tool has written so far, to stdout and stderr. */
  readonly written: () => number
  readonly stderr: () => string
  timedOut: Option.Option<ToolTimedOut>
}

/** Signals the tool's process group; a group that is gone is no error. */
const signalGroup = (child: ChildProcess, signal: NodeJS.Signals): void => {
  if (child.pid === undefined) return
  try {
    process.kill(-child.pid, signal)
  } catch {
    // The group has exited already.
  }
}

/**
 * The fault suite's hook: a tool that really hangs (stopped, as a process stuck in I/O looks) or
 * dies. The shell that would become the tool signals itself before it runs it, so a quick tool
 * cannot finish before its fault fires.
 */
const faultedSpawn = (request: SpawnRequest, tool: string): { readonly command: string; readonly args: ReadonlyArray<string> } => {
  const fault = firedAction(`spawn:${tool}`)
  if (fault === "hang") return { command: "/bin/sh", args: ["-c", 'kill -STOP $$; exec "$@"', tool, request.command, ...request.args] }
  if (fault === "kill") return { command: "/bin/sh", args: ["-c", "kill -KILL $$", tool] }
  return { command: request.command, args: request.args }
}

const start = (request: SpawnRequest, tool: string): Child => {
  const { command, args } = faultedSpawn(request, tool)
  // Its own process group (detached), so that a shell's or mount's children are stopped with it.
  const child = spawn(command, [...args], { stdio: ["pipe", "pipe", "pipe"], env: request.env, detached: true })
  // Its input, or none (an input at its end at once). A tool that exits before it read all of
  // its input ends the input (EPIPE); its exit says why.
  if (request.stdin === undefined) child.stdin.end()
  else pipeline(request.stdin, child.stdin, () => undefined)
  child.stdin.on("error", () => undefined)
  let stderr = ""
  let stderrBytes = 0
  let exitedYet = false
  child.stderr.on("data", (data: Buffer) => {
    stderr = appendBounded(stderr, data.toString())
    stderrBytes += data.length
  })
  // A read error on stderr must not crash the service (stdout's reach its reader through the pipeline).
  child.stderr.on("error", () => undefined)
  const exited = new Promise<ToolExit>((resolve) => {
    child.once("error", (error) => {
      exitedYet = true
      resolve({ code: null, signal: null, startError: error })
    })
    child.once("exit", (code, signal) => {
      exitedYet = true
      resolve({ code, signal })
    })
  })
  // The reader gets the output through a stream of its own: when the tool exits, Node resumes
  // its stdout if nobody reads it yet, and output not read by then would be thrown away (a
  // tool that writes a little and exits before the first read would seem to have written nothing).
  const pipe = child.stdout
  const stdout = new PassThrough()
  pipeline(pipe, stdout, () => undefined)
  return {
    process: child,
    pipe,
    stdout,
    exited,
    hasExited: () => exitedYet,
    written: () => (pipe instanceof Socket ? pipe.bytesRead : 0) + stderrBytes,
    stderr: () => stderr,
    timedOut: Option.none()
  }
}

/** Waits for the exit at most `within`; true when the tool exited. */
const exitWithin = (child: Child, within: Duration.Duration) =>
  Effect.interruptible(Effect.promise(() => child.exited)).pipe(
    Effect.timeoutOption(within),
    Effect.map(Option.isSome)
  )

/**
 * Stops a running tool: SIGTERM (with SIGCONT, so that a stopped tool gets it), then SIGKILL
 * after the grace period, and waits for its exit, so that nothing it held (a mount, a loop
 * device) is still busy afterwards. Whatever of its group outlived it (a child that ignored
 * SIGTERM) gets SIGKILL then.
 */
const terminate = (child: Child, tool: string, grace: Duration.Duration) =>
  Effect.gen(function* () {
    if (child.hasExited()) return
    signalGroup(child.process, "SIGTERM")
    signalGroup(child.process, "SIGCONT")
    if (!(yield* exitWithin(child, grace))) {
      signalGroup(child.process, "SIGKILL")
      if (!(yield* exitWithin(child, grace))) {
        return yield* Effect.logWarning(`${tool} (pid ${child.process.pid ?? "none"}) did not exit ${Duration.format(grace)} after SIGKILL`)
      }
    }
    signalGroup(child.process, "SIGKILL")
  })

/**
 * Watches a tool's limits until it exits. While its output waits unread up to the stream's
 * high-water mark, its output is no longer read from the pipe: the tool is blocked by its
 * reader, not silent, and its inactivity clock restarts. Below the mark the pipe is read, so
 * any output the tool writes is counted.
 */
const watch = (child: Child, request: SpawnRequest, tool: string, grace: Duration.Duration) =>
  Effect.gen(function* () {
    const runtime = request.limits.runtime === undefined ? undefined : Duration.decode(request.limits.runtime)
    const inactivity = request.limits.inactivity === undefined ? undefined : Duration.decode(request.limits.inactivity)
    const shortest = Math.min(
      runtime === undefined ? Number.POSITIVE_INFINITY : Duration.toMillis(runtime),
      inactivity === undefined ? Number.POSITIVE_INFINITY : Duration.toMillis(inactivity)
    )
    if (!Number.isFinite(shortest)) return
    const tick = Duration.millis(Math.max(10, Math.min(1_000, Math.floor(shortest / 10))))
    const startedAt = yield* Clock.currentTimeMillis
    let activeAt = startedAt
    let seen = child.written()
    while (!child.hasExited()) {
      yield* Effect.sleep(tick)
      const now = yield* Clock.currentTimeMillis
      const written = child.written()
      if (written !== seen || child.pipe.readableLength >= child.pipe.readableHighWaterMark) activeAt = now
      seen = written
      const exceeded: Option.Option<{ readonly limit: "runtime" | "inactivity"; readonly after: Duration.Duration }> =
        runtime !== undefined && now - startedAt >= Duration.toMillis(runtime)
          ? Option.some({ limit: "runtime", after: runtime })
          : inactivity !== undefined && now - activeAt >= Duration.toMillis(inactivity)
            ? Option.some({ limit: "inactivity", after: inactivity })
            : Option.none()
      if (Option.isSome(exceeded) && !child.hasExited()) {
        const timedOut = new ToolTimedOut({
          tool,
          limit: exceeded.value.limit,
          timeout: Duration.format(exceeded.value.after),
          stderr: lastLines(child.stderr(), request.secrets)
        })
        child.timedOut = Option.some(timedOut)
        yield* Effect.logWarning(timedOut.message)
        // Its output ends with it: the reader sees the end, then the timeout from `exit`.
        return yield* terminate(child, tool, grace)
      }
    }
  })

/**
 * The one way the streamer starts a tool. The tool is tied to the scope: when the scope
 * closes (the work ended, failed or was interrupted) a tool still running gets SIGTERM, then
 * SIGKILL after a grace period, and its exit is awaited. A tool that runs past its limits is
 * stopped the same way and its `exit` fails with ToolTimedOut.
 *
 * A failpoint `spawn:<tool>` (see failpoints.ts) stops the tool with SIGSTOP ("hang") or
 * kills it with SIGKILL ("kill") before it runs.
 */
export const spawnTool = (request: SpawnRequest): Effect.Effect<RunningTool, never, Scope.Scope> =>
  Effect.gen(function* () {
    const tool = basename(request.command)
    const grace = Duration.decode(request.killGrace ?? KILL_GRACE)
    const child = yield* Effect.acquireRelease(
      Effect.sync(() => start(request, tool)),
      (started) => terminate(started, tool, grace).pipe(Effect.zipRight(Effect.sync(() => started.stdout.destroy())))
    )
    // Interruptible even where the tool is started from an uninterruptible region (acquiring a
    // mount or a loop device), so that closing the scope does not wait for the watch's next tick.
    yield* Effect.forkScoped(Effect.interruptible(watch(child, request, tool, grace)))
    const running: RunningTool = {
      tool,
      pid: child.process.pid,
      stdout: child.stdout,
      stderr: child.stderr,
      exit: Effect.flatMap(Effect.promise(() => child.exited), (exit) =>
        Option.match(child.timedOut, { onNone: () => Effect.succeed(exit), onSome: (timedOut) => Effect.fail(timedOut) })
      )
    }
    return running
  })

/** The failure of a tool that did not exit 0: its code or signal, and its last stderr lines. */
export const commandFailure = (
  command: string,
  exit: ToolExit,
  stderr: string,
  secrets: ReadonlyArray<Redacted.Redacted<string>> = []
): CommandFailed => {
  const how =
    exit.startError !== undefined
      ? `could not start: ${exit.startError.message}`
      : exit.signal !== null
        ? `killed by ${exit.signal}`
        : ""
  const lines = lastLines(stderr, secrets)
  return new CommandFailed({ command, exitCode: exit.code, stderr: [how, lines].filter((part) => part !== "").join("; ") })
}

/** Succeeds when the tool exited 0; otherwise fails with CommandFailed (or ToolTimedOut). */
export const exitedCleanly = (tool: RunningTool, command: string = tool.tool, secrets: ReadonlyArray<Redacted.Redacted<string>> = []) =>
  Effect.flatMap(tool.exit, (exit) => (exit.code === 0 ? Effect.void : Effect.fail(commandFailure(command, exit, tool.stderr(), secrets))))

/**
 * Where the error a step reports must be CommandFailed: a timeout as a failure of the tool,
 * its message saying which limit ran out.
 */
export const timeoutAsCommandFailed = (error: ToolTimedOut): CommandFailed =>
  new CommandFailed({ command: error.tool, exitCode: null, stderr: error.message })

/** The one-line reason of a failed short command. */
export const reasonOf = (error: CommandFailed | ToolTimedOut): string =>
  error._tag === "ToolTimedOut" ? error.message : error.stderr || `${error.command} exited with ${error.exitCode ?? "an error"}`

/** A stream's text to its end; a read error ends it too (the tool's exit says what went wrong). */
const collect = (stream: Readable): Effect.Effect<string> =>
  Effect.async<string>((resume) => {
    let text = ""
    stream.setEncoding("utf8")
    stream.on("data", (piece: string) => (text += piece))
    finished(stream, { writable: false }, () => resume(Effect.succeed(text)))
  })

/**
 * Runs a tool to completion and returns its standard output, once `exitedWell` accepted how
 * it ended (see `exitedCleanly`).
 */
export const runToCompletion = <E>(request: SpawnRequest, exitedWell: (tool: RunningTool) => Effect.Effect<void, E>): Effect.Effect<string, E> =>
  Effect.scoped(
    Effect.gen(function* () {
      const tool = yield* spawnTool(request)
      // Interruptible even where the caller is not (acquiring a mount): a failed exit ends the read at once.
      const [stdout] = yield* Effect.all([Effect.interruptible(collect(tool.stdout)), exitedWell(tool)], { concurrency: 2 })
      return stdout
    })
  )

/**
 * Runs a command to completion (within SHORT_COMMAND_TIMEOUT unless told otherwise) and
 * returns its standard output; a non-zero exit fails with its stderr.
 */
export const run = (
  command: string,
  args: ReadonlyArray<string>,
  options: { readonly limits?: ToolLimits; readonly env?: NodeJS.ProcessEnv; readonly secrets?: ReadonlyArray<Redacted.Redacted<string>> } = {}
): Effect.Effect<string, CommandFailed | ToolTimedOut> =>
  runToCompletion({ ...options, command, args, limits: options.limits ?? SHORT_COMMAND }, (tool) =>
    exitedCleanly(tool, [command, ...args].join(" "), options.secrets)
  )
