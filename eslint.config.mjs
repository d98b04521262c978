import { readFileSync, readdirSync } from "node:fs"
import { join } from "node:path"
import nx from "@nx/eslint-plugin"
import js from "@eslint/js"
import tseslint from "typescript-eslint"

// Module boundaries. Nx tags are per project, but an app holds runtime code, its CDK stack and
// its tests side by side, so the scopes a file may import are decided by which files it is:
// - runtime files (everything not matched below) import only `scope:runtime` projects;
// - CDK files (an app's deploy.ts and cdk.ts, libs/deploy, infra) also `scope:cdk`;
// - test files and test support (including the `./testing` entry points and fixtures), and
//   every file of a `scope:local` project (libs/local, tools), import whatever they need.
// The type constraints hold for every file: apps depend on libs, never on each other; tools
// and infra may import apps.

const CDK_FILES = ["apps/*/src/deploy.ts", "apps/*/src/cdk.ts", "libs/deploy/**/*.ts", "infra/**/*.ts"]

/** Test files, test support (`test-*.ts`, fixtures, `testing.ts` entry points) and the scope:local projects. */
const TEST_FILES = [
  "**/*.test.ts",
  "**/test-*.ts",
  "**/fixtures.ts",
  "**/fixtures/**/*.ts",
  "**/testing.ts",
  "**/testing/**/*.ts",
  "libs/local/**/*.ts",
  "libs/local/**/*.mjs",
  "tools/**/*.ts",
  "tools/**/*.mjs"
]

/** The CDK stacks' own files, whose tsconfig.deploy.json turns exactOptionalPropertyTypes off for aws-cdk-lib. */
const APP_DEPLOY_FILES = ["apps/*/src/deploy.ts", "apps/*/src/*deploy.test.ts", "apps/*/src/cdk.ts"]

const RUNTIME_SCOPES = ["scope:runtime"]
const CDK_SCOPES = ["scope:runtime", "scope:cdk"]
const ALL_SCOPES = ["scope:runtime", "scope:cdk", "scope:local"]

/**
 * The apps' package names, anchored. Nx forbids importing an app outright, whatever the tags say,
 * so the files of tools and infra, which may import apps, are allowed these imports by name.
 */
const APP_IMPORTS = readdirSync(join(import.meta.dirname, "apps")).map(
  (app) => `^${JSON.parse(readFileSync(join(import.meta.dirname, "apps", app, "package.json"), "utf8")).name}$`
)

const moduleBoundaries = (scopes, allow = []) => [
  "error",
  {
    enforceBuildableLibDependency: false,
    allow,
    depConstraints: [
      { sourceTag: "type:app", onlyDependOnLibsWithTags: ["type:lib"] },
      { sourceTag: "type:lib", onlyDependOnLibsWithTags: ["type:lib"] },
      { sourceTag: "type:tool", onlyDependOnLibsWithTags: ["type:lib", "type:app"] },
      { sourceTag: "type:infra", onlyDependOnLibsWithTags: ["type:lib", "type:app"] },
      // The first that fails is reported: it names the importing project's scope; "*" holds a project with none to the same rule.
      ...["scope:runtime", "scope:cdk", "scope:local", "*"].map((sourceTag) => ({ sourceTag, onlyDependOnLibsWithTags: scopes }))
    ]
  }
]

const RUNTIME_ONLY = "runtime code never imports CDK/test/emulator code"
const NOT_TEST_CODE = "runtime and CDK code never import test code"

/** What Nx cannot see inside a project: packages and files that only tests need. */
const testImports = [
  { group: ["aws-sdk-client-mock", "vitest", "@effect/vitest"], message: `${NOT_TEST_CODE}: mocks and test runners belong in *.test.ts and test support files.` },
  { group: ["@backup-actions/*/testing"], message: `${NOT_TEST_CODE}: the ./testing entry points are for tests.` },
  {
    regex: "^\\.{1,2}/(.*/)?([^/]*\\.test|test-[^/]*|fixtures|fixtures/.*|testing|testing/.*)(\\.ts)?$",
    message: `${NOT_TEST_CODE}: tests, test-*.ts, fixtures and testing.ts are test support.`
  }
]

export default [
  { ignores: ["**/node_modules/**", "**/dist/**", "**/.nx/**", "**/cdk.out/**", ".local/**", ".venv/**"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  ...nx.configs["flat/base"],
  {
    files: ["**/*.ts", "**/*.mjs"],
    rules: {
      "@typescript-eslint/no-explicit-any": "error",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_", destructuredArrayIgnorePattern: "^_" }],
      "@nx/enforce-module-boundaries": moduleBoundaries(RUNTIME_SCOPES),
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            { group: ["aws-cdk-lib", "aws-cdk-lib/*", "constructs", "cdk-nag"], message: `${RUNTIME_ONLY}: CDK code lives in deploy.ts, cdk.ts, libs/deploy and infra.` },
            ...testImports,
            { regex: "^\\.{1,2}/(.*/)?(deploy|cdk)(\\.ts)?$", message: `${RUNTIME_ONLY}: deploy.ts and cdk.ts are the service's CDK stack.` }
          ]
        }
      ]
    }
  },
  {
    files: CDK_FILES,
    rules: {
      "@nx/enforce-module-boundaries": moduleBoundaries(CDK_SCOPES),
      "no-restricted-imports": ["error", { patterns: testImports }]
    }
  },
  {
    files: ["infra/**/*.ts"],
    rules: { "@nx/enforce-module-boundaries": moduleBoundaries(CDK_SCOPES, APP_IMPORTS) }
  },
  {
    files: TEST_FILES,
    rules: {
      "@nx/enforce-module-boundaries": moduleBoundaries(ALL_SCOPES),
      "no-restricted-imports": "off"
    }
  },
  {
    files: ["tools/**/*.ts", "tools/**/*.mjs", ...TEST_FILES.filter((pattern) => pattern.startsWith("**/")).map((pattern) => `infra/${pattern}`)],
    rules: { "@nx/enforce-module-boundaries": moduleBoundaries(ALL_SCOPES, APP_IMPORTS) }
  },
  // Type-aware rules for bugs a type checker alone lets through: a promise nobody awaits, a
  // promise where a callback's result is ignored, a switch that forgets a member of a union.
  {
    files: ["{apps,libs,tools,infra}/**/*.ts"],
    languageOptions: {
      parserOptions: {
        projectService: {
          // An app's CDK files are in its tsconfig.deploy.json, not in the tsconfig.json the
          // project service looks for: they share one project with the same compiler options.
          allowDefaultProject: APP_DEPLOY_FILES,
          defaultProject: "libs/deploy/tsconfig.json",
          maximumDefaultProjectFileMatchCount_THIS_WILL_SLOW_DOWN_LINTING: 20
        },
        tsconfigRootDir: import.meta.dirname
      }
    },
    rules: {
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/no-misused-promises": "error",
      // A `default` that handles the rest is a decision; a switch without one must name every member.
      "@typescript-eslint/switch-exhaustiveness-check": ["error", { considerDefaultExhaustiveForUnions: true }]
    }
  },
  {
    files: ["**/*.mjs"],
    languageOptions: { globals: { process: "readonly", console: "readonly" } }
  }
]
