import { spawn } from "node:child_process"
import { Effect, Schema } from "effect"

export class CommandFailed extends Schema.TaggedError<CommandFailed>()("CommandFailed", {
  command: Schema.String,
  exitCode: Schema.NullOr(Schema.Number),
  stderr: Schema.String
}) {}

/** Runs a command to completion and returns its standard output; a non-zero exit fails with its stderr. */
export const run = (command: string, args: ReadonlyArray<string>) =>
  Effect.async<string, CommandFailed>((resume, signal) => {
    const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"], signal })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (data: Buffer) => (stdout += data.toString()))
    child.stderr.on("data", (data: Buffer) => (stderr += data.toString()))
    child.on("error", (error) => resume(Effect.fail(new CommandFailed({ command: [command, ...args].join(" "), exitCode: null, stderr: String(error) }))))
    child.on("close", (code) =>
      resume(
        code === 0
          ? Effect.succeed(stdout)
          : Effect.fail(new CommandFailed({ command: [command, ...args].join(" "), exitCode: code, stderr: stderr.trim() }))
      )
    )
  })
