import { Cause, Console, Effect, Either, Exit, Layer, Option } from "effect"
import { parseCommandLine, type Command, type Invocation, type RestoreTier } from "./args"
import { ColdReads, bringBack } from "./cold-storage"
import { drillCommand } from "./drill/command"
import { EXIT, describeError, type CliError } from "./errors"
import { FailoverAccess, failoverCommand } from "./failover/command"
import { Progress } from "./progress"
import { replayCommand } from "./replay"
import { reportCommand } from "./report"
import { restoreCommand } from "./restore/command"
import { manifestBeside, type S3Location } from "./s3-url"
import { stackFromEnvironment, stackFromFile, stackLayer } from "./stack"
import { statusCommand } from "./status"
import { verifyCommand } from "./verify"

/** What a command runs with: the stack's clients and a progress display. */
type CommandServices = Layer.Layer.Success<ReturnType<typeof stackLayer>> | Progress

/**
 * A command that reads an archive: the archive and the manifest beside it are restored from
 * GLACIER or DEEP_ARCHIVE first, both at once, and every object the command reads after gets the
 * command's retrieval tier.
 */
const readingArchive = (
  archive: S3Location,
  tier: RestoreTier,
  command: string,
  stderr: NodeJS.WritableStream,
  effect: Effect.Effect<void, CliError, CommandServices>
): Effect.Effect<void, CliError, CommandServices> =>
  Effect.zipRight(bringBack([manifestBeside(archive), archive]), effect).pipe(Effect.provide(ColdReads.layer(tier, command, stderr)))

/** The effect of one command, needing the stack's clients and a progress display. */
const commandEffect = (
  command: Exclude<Command, { readonly _tag: "Help" }>,
  environment: Readonly<Record<string, string | undefined>>,
  stderr: NodeJS.WritableStream
): Effect.Effect<void, CliError, CommandServices> => {
  switch (command._tag) {
    case "Status":
      return statusCommand(command)
    case "Report":
      return reportCommand(command)
    case "Replay":
      return replayCommand(command)
    case "Verify":
      return readingArchive(command.archive, command.tier, "verify", stderr, verifyCommand(command.archive))
    case "Restore": {
      const restore: Effect.Effect<void, CliError, CommandServices> = restoreCommand(command.archive, command.target)
      return readingArchive(command.archive, command.tier, "restore", stderr, restore)
    }
    case "Failover":
      return failoverCommand(command).pipe(Effect.provide(FailoverAccess))
    case "Drill":
      return drillCommand(command, environment, stderr)
  }
}

/** Runs a parsed invocation against the stack it names; fails with what the user must read. */
export const runInvocation = (invocation: Invocation, environment: Readonly<Record<string, string | undefined>>, stderr: NodeJS.WriteStream) =>
  Effect.gen(function* () {
    const { command, options } = invocation
    if (command._tag === "Help") {
      yield* Console.log(command.text)
      return
    }
    const stack = options.stackFile === undefined ? stackFromEnvironment(environment) : yield* stackFromFile(options.stackFile)
    yield* commandEffect(command, environment, stderr).pipe(Effect.provide(Layer.mergeAll(stackLayer(stack), Progress.layer(stderr, options.progress))))
  })

/**
 * The whole CLI: arguments in, exit code out. Every expected failure is printed on stderr as
 * one clear message; anything else is a defect, printed with its cause.
 */
export const runCli = (argv: ReadonlyArray<string>, environment: Readonly<Record<string, string | undefined>>, stderr: NodeJS.WriteStream) =>
  Effect.gen(function* () {
    const parsed = parseCommandLine(argv)
    const exit = yield* Effect.exit(Either.isLeft(parsed) ? Effect.fail<CliError>(parsed.left) : runInvocation(parsed.right, environment, stderr))
    if (Exit.isSuccess(exit)) return EXIT.ok
    const failure = Cause.failureOption(exit.cause)
    if (Option.isSome(failure)) {
      const { text, exitCode } = describeError(failure.value)
      yield* Console.error(text)
      return exitCode
    }
    yield* Console.error(`backup-actions: unexpected failure:\n${Cause.pretty(exit.cause)}`)
    return EXIT.problem
  })
