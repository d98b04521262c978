export { runCli } from "./cli"
export { parseCommandLine, HELP, type Command, type Invocation } from "./args"
export { FailoverResult } from "@backup-actions/contracts"
