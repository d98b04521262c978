import { readFileSync } from "node:fs"
import { join } from "node:path"
import { Either } from "effect"
import { parseDeployConfig, type DeployConfig } from "@backup-actions/deploy"

/** The example configuration that ships with the project, which the tests synthesize. */
export const exampleConfig = (): DeployConfig =>
  Either.getOrThrow(parseDeployConfig(readFileSync(join(import.meta.dirname, "..", "config", "example.json"), "utf8"), "infra/config/example.json"))
