import { Schema } from "effect"
import type { AwsError } from "@backup-actions/aws"

/** The command line itself is wrong: exit code 2, with the command's usage. */
export class UsageError extends Schema.TaggedError<UsageError>()("UsageError", {
  message: Schema.String,
  /** The command whose --help to point at, when there is one. */
  command: Schema.optional(Schema.String)
}) {}

/** The CLI cannot tell which stack to talk to: also a usage error (exit code 2). */
export class StackNotFound extends Schema.TaggedError<StackNotFound>()("StackNotFound", {
  message: Schema.String
}) {}

/** The operation ran and found something wrong (a mismatch, a failed replay): exit code 1. */
export class CheckFailed extends Schema.TaggedError<CheckFailed>()("CheckFailed", {
  summary: Schema.String,
  problems: Schema.Array(Schema.String)
}) {}

/** What the operation needed could not be read or written (a missing object, a broken manifest): exit code 1. */
export class OperationFailed extends Schema.TaggedError<OperationFailed>()("OperationFailed", {
  message: Schema.String
}) {}

export type CliError = UsageError | StackNotFound | CheckFailed | OperationFailed | AwsError

/** The exit code a user sees for each way a command can end. */
export const EXIT = { ok: 0, problem: 1, usage: 2 } as const

/** How an error reads on stderr and which exit code it ends with. */
export const describeError = (error: CliError): { readonly text: string; readonly exitCode: number } => {
  switch (error._tag) {
    case "UsageError":
      return {
        text: `backup-actions: ${error.message}\nRun \`backup-actions ${error.command === undefined ? "" : `${error.command} `}--help\` for usage.`,
        exitCode: EXIT.usage
      }
    case "StackNotFound":
      return { text: `backup-actions: ${error.message}`, exitCode: EXIT.usage }
    case "CheckFailed":
      return { text: [`backup-actions: ${error.summary}`, ...error.problems.map((problem) => `  - ${problem}`)].join("\n"), exitCode: EXIT.problem }
    case "OperationFailed":
      return { text: `backup-actions: ${error.message}`, exitCode: EXIT.problem }
    case "AwsError":
      return { text: `backup-actions: ${error.operation} failed: ${error.code}: ${error.message}`, exitCode: EXIT.problem }
  }
}
