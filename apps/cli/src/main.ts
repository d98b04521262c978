import { Effect } from "effect"
import { runCli } from "./cli"

// The operator CLI: `backup-actions <command>`; see `backup-actions --help`.
const exitCode = await Effect.runPromise(runCli(process.argv.slice(2), process.env, process.stderr))
process.exitCode = exitCode
