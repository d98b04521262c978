import { spawn } from "node:child_process"
import { join } from "node:path"
import { EMULATOR_CREDENTIALS, workspaceRoot } from "@backup-actions/local"

export interface CliResult {
  readonly status: number | null
  readonly stdout: string
  readonly stderr: string
}

/**
 * Runs the CLI as users do: its own Node.js process, the stack from a file, nothing from this
 * process's AWS settings, so exit codes and messages are tested as they are seen. Its
 * credentials are the emulator's, in the environment where the SDK's default chain finds them,
 * as a user's would be.
 */
export const runCli = (stackFile: string, ...args: ReadonlyArray<string>): Promise<CliResult> => startCli(stackFile, ...args).result

/** The CLI started as runCli starts it, for a test that signals it: the process, its stderr so far, and its result. */
export const startCli = (stackFile: string, ...args: ReadonlyArray<string>) => {
  const environment = {
    ...Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^(BACKUP_ACTIONS_|AWS_)/.test(name))),
    AWS_ACCESS_KEY_ID: EMULATOR_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: EMULATOR_CREDENTIALS.secretAccessKey
  }
  const child = spawn(process.execPath, ["--import", "tsx", join("apps", "cli", "src", "main.ts"), ...args, "--stack", stackFile], {
    cwd: workspaceRoot(),
    env: environment,
    stdio: ["ignore", "pipe", "pipe"]
  })
  let stdout = ""
  let stderr = ""
  child.stdout.on("data", (data: Buffer) => (stdout += data.toString()))
  child.stderr.on("data", (data: Buffer) => (stderr += data.toString()))
  const result = new Promise<CliResult>((resolve, reject) => {
    child.on("error", reject)
    child.on("close", (status) => resolve({ status, stdout, stderr }))
  })
  return { child, stderr: () => stderr, result }
}
