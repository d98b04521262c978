// Type-checks a project: its tsconfig.json, and its tsconfig.deploy.json when it has CDK code.
// aws-cdk-lib's declarations are not written for exactOptionalPropertyTypes, so the CDK files
// are checked with that one option off and everything else with the strict base settings.
import { execFileSync } from "node:child_process"
import { existsSync } from "node:fs"
import { join } from "node:path"

const projectRoot = process.argv[2]
if (projectRoot === undefined) {
  console.error("usage: node tools/build/typecheck.mjs <project root>")
  process.exit(2)
}
for (const name of ["tsconfig.json", "tsconfig.deploy.json"]) {
  const config = join(projectRoot, name)
  if (!existsSync(config)) continue
  try {
    execFileSync("tsc", ["-p", config, "--noEmit"], { stdio: "inherit" })
  } catch (error) {
    // tsc's own errors are already printed; a tsc that could not be started is said here.
    if (error?.code === "ENOENT") console.error("typecheck: tsc not found: run it through nx or npm, which put node_modules/.bin on PATH")
    process.exit(1)
  }
}
