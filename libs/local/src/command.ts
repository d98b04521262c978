import { execFile } from "node:child_process"
import { Duration, Effect, Schema } from "effect"

/** A local command that exited non-zero, could not start, or ran past its time and was killed. */
export class LocalCommandFailed extends Schema.TaggedError<LocalCommandFailed>()("LocalCommandFailed", {
  command: Schema.String,
  reason: Schema.String
}) {}

/**
 * Runs a short command (losetup, a listing) to completion and returns its standard output. It
 * is killed with SIGKILL when it runs longer than `timeout`, or when the effect is interrupted.
 * `input`, when given, is written to its standard input (SQL for a database client: never on a
 * command line, where any process could read it).
 */
export const runCommand = (command: string, args: ReadonlyArray<string>, options: { readonly timeout: Duration.DurationInput; readonly input?: string | Buffer }) =>
  Effect.async<string, LocalCommandFailed>((resume, signal) => {
    const timeout = Duration.decode(options.timeout)
    const line = [command, ...args].join(" ")
    const child = execFile(command, [...args], { encoding: "utf8", timeout: Duration.toMillis(timeout), killSignal: "SIGKILL", signal, maxBuffer: 1024 * 1024 }, (error, stdout, stderr) => {
      if (error === null) return resume(Effect.succeed(stdout))
      const reason = error.killed === true && !signal.aborted ? `ran longer than ${Duration.format(timeout)} and was killed` : stderr.trim() === "" ? error.message : stderr.trim()
      resume(Effect.fail(new LocalCommandFailed({ command: line, reason })))
    })
    if (options.input !== undefined) {
      // A command that exits before reading all of it closes the pipe: its exit says why, not EPIPE.
      child.stdin?.on("error", () => undefined)
      child.stdin?.end(options.input)
    }
  })
