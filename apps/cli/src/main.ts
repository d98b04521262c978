import { Cause, Effect, Exit, Fiber } from "effect"
import { runCli } from "./cli"

/** The exit code of a process ended by a signal, as a shell reports it. */
const SIGNAL_EXIT = { SIGINT: 130, SIGTERM: 143 } as const

// The operator CLI: `backup-actions <command>`; see `backup-actions --help`.
// SIGINT or SIGTERM (Ctrl-C, ECS stopping a task) interrupts the command, so that what it made
// to work in (a drill's scratch snapshot, table or directory, a half-written snapshot) is
// deleted before the process ends.
const fiber = Effect.runFork(runCli(process.argv.slice(2), process.env, process.stderr))
let signalled: keyof typeof SIGNAL_EXIT | undefined
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    signalled = signal
    process.stderr.write(`backup-actions: ${signal}: stopping, and deleting what the command made\n`)
    Effect.runFork(Fiber.interrupt(fiber))
  })
}
const exit = await Effect.runPromise(Fiber.await(fiber))
if (Exit.isSuccess(exit)) process.exitCode = exit.value
else if (signalled !== undefined && Cause.isInterruptedOnly(exit.cause)) process.exitCode = SIGNAL_EXIT[signalled]
else {
  process.stderr.write(`backup-actions: unexpected failure:\n${Cause.pretty(exit.cause)}\n`)
  process.exitCode = 1
}
