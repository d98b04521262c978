import { fileURLToPath } from "node:url"
import { assert, beforeAll, describe, it } from "@effect/vitest"
import { createProjectGraphAsync } from "@nx/devkit"
import { ESLint } from "eslint"

const root = fileURLToPath(new URL("../..", import.meta.url))

const BOUNDARY_RULES = new Set(["@nx/enforce-module-boundaries", "no-restricted-imports"])

/**
 * The repository's own ESLint configuration, limited to the two rules that draw the module
 * boundaries: the type-aware rules (and the TypeScript programs they need) are left out, so a
 * few snippets lint in well under a second.
 */
const eslint = new ESLint({
  cwd: root,
  ruleFilter: ({ ruleId }) => BOUNDARY_RULES.has(ruleId),
  overrideConfig: { files: ["**/*.ts"], languageOptions: { parserOptions: { projectService: false } } }
})

/** The boundary errors of `source` as if it were the file at `filePath`, relative to the workspace root. */
const boundaryErrors = async (source: string, filePath: string): Promise<ReadonlyArray<{ readonly ruleId: string | null; readonly message: string }>> => {
  const [result] = await eslint.lintText(source, { filePath })
  return (result?.messages ?? []).map(({ ruleId, message }) => ({ ruleId, message }))
}

beforeAll(async () => {
  // The Nx rule reads the project graph (and so the projects' tags) from Nx's cache and skips
  // itself when there is none: compute it here, in this process, from the project.json files as they are.
  process.env["NX_DAEMON"] = "false"
  await createProjectGraphAsync({ exitOnError: false })
})

describe("the module boundaries", () => {
  const runtimeFile = "apps/restorer/src/volumes.ts"

  it("forbid a service's runtime file to import the emulator (scope:local)", async () => {
    // Prepare
    const source = `import { startEmulator } from "@backup-actions/local"\nexport const start = startEmulator\n`
    // Act
    const errors = await boundaryErrors(source, runtimeFile)
    // Assess
    assert.deepStrictEqual(
      errors.map((error) => error.ruleId),
      ["@nx/enforce-module-boundaries"]
    )
    assert.match(errors[0]?.message ?? "", /can only depend on libs tagged with "scope:runtime"$/)
  })

  it("forbid a service's runtime file to import the CDK constructs library (scope:cdk)", async () => {
    // Prepare
    const source = `import { ServiceStack } from "@backup-actions/deploy"\nexport const stack = ServiceStack\n`
    // Act
    const errors = await boundaryErrors(source, runtimeFile)
    // Assess
    assert.deepStrictEqual(
      errors.map((error) => error.ruleId),
      ["@nx/enforce-module-boundaries"]
    )
  })

  it("forbid a runtime file to import aws-cdk-lib, test code or its service's CDK stack, with the reason", async () => {
    // Prepare
    const source = [
      `import { App } from "aws-cdk-lib"`,
      `import { mockClient } from "aws-sdk-client-mock"`,
      `import { ledgerMemory } from "@backup-actions/ledger/testing"`,
      `import { restorerStack } from "./deploy"`,
      `export const used = [App, mockClient, ledgerMemory, restorerStack]`,
      ``
    ].join("\n")
    // Act
    const errors = await boundaryErrors(source, runtimeFile)
    // Assess
    assert.deepStrictEqual(
      errors.map((error) => error.ruleId),
      ["no-restricted-imports", "no-restricted-imports", "no-restricted-imports", "no-restricted-imports"]
    )
    for (const error of errors) assert.include(error.message, "never import")
  })

  it("let a test file import the emulator and the CDK test support", async () => {
    // Prepare
    const source = [
      `import { startEmulator } from "@backup-actions/local"`,
      `import { synthesizeService } from "@backup-actions/deploy/testing"`,
      `import { mockClient } from "aws-sdk-client-mock"`,
      `export const used = [startEmulator, synthesizeService, mockClient]`,
      ``
    ].join("\n")
    // Act
    const errors = await boundaryErrors(source, "apps/restorer/src/volumes.test.ts")
    // Assess
    assert.deepStrictEqual(errors, [])
  })

  it("let a service's CDK stack import the CDK library and aws-cdk-lib, but not the emulator", async () => {
    // Prepare
    const allowed = `import { Stack } from "aws-cdk-lib"\nimport { ServiceStack } from "@backup-actions/deploy"\nexport const used = [Stack, ServiceStack]\n`
    const forbidden = `import { startEmulator } from "@backup-actions/local"\nexport const start = startEmulator\n`
    // Act
    const allowedErrors = await boundaryErrors(allowed, "apps/restorer/src/deploy.ts")
    const forbiddenErrors = await boundaryErrors(forbidden, "apps/restorer/src/deploy.ts")
    // Assess
    assert.deepStrictEqual(allowedErrors, [])
    assert.deepStrictEqual(
      forbiddenErrors.map((error) => error.ruleId),
      ["@nx/enforce-module-boundaries"]
    )
  })

  it("let a tool import an app, and forbid an app to import another app", async () => {
    // Prepare
    const source = `import { restorerProcess } from "@backup-actions/restorer"\nexport const serviceProcess = restorerProcess\n`
    // Act
    const fromTool = await boundaryErrors(source, "tools/src/demo.ts")
    const fromApp = await boundaryErrors(source, "apps/sharer/src/ebs.ts")
    // Assess
    assert.deepStrictEqual(fromTool, [])
    assert.deepStrictEqual(
      fromApp.map((error) => error.ruleId),
      ["@nx/enforce-module-boundaries"]
    )
  })
})
