import { access, readdir } from "node:fs/promises"
import { tmpdir } from "node:os"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Scope } from "effect"
import { postgresServer } from "./db-servers/postgres"
import { startDbServer, type DbServerKind } from "./db-server"

const exists = (path: string) =>
  Effect.promise(() =>
    access(path).then(
      () => true,
      () => false
    )
  )

/** The private directories of the servers named `name` that are left in the temp dir. */
const directoriesOf = (name: string) => Effect.promise(() => readdir(tmpdir()).then((entries) => entries.filter((entry) => entry.startsWith(`backup-actions-postgres-${name}-`))))

/** A shell command standing in for one of the engine's programs. */
const shell = (script: string) => ({ command: "sh", args: ["-c", script] })

describe("a local database server", () => {
  it.live("answers SQL once started, and is stopped and removed when its scope closes", () =>
    Effect.gen(function* () {
      // Prepare
      const scope = yield* Scope.make()
      const server = yield* Scope.extend(startDbServer(postgresServer, { name: "db-server-test" }), scope)
      // Act
      const answer = yield* server.sql("postgres", "SELECT 40 + 2;")
      yield* Scope.close(scope, Exit.void)
      // Assess
      assert.strictEqual(answer.trim(), "42")
      assert.match(server.endpoint, /^127\.0\.0\.1:\d+$/)
      assert.isFalse(yield* exists(server.dataDir))
    })
  )

  it.live("fails a start whose initialisation fails with the engine, the step and the program's complaint, and leaves no directory", () =>
    Effect.gen(function* () {
      // Prepare
      const broken: DbServerKind = { ...postgresServer, initialise: () => shell("echo 'initdb: could not create directory' >&2; exit 1") }
      // Act
      const error = yield* Effect.flip(Effect.scoped(startDbServer(broken, { name: "db-server-broken-init" })))
      // Assess
      assert.deepStrictEqual([error._tag, error.engine, error.step, error.reason], ["DbServerFailed", "postgres", "initialise", "initdb: could not create directory"])
      assert.deepStrictEqual(yield* directoriesOf("db-server-broken-init"), [])
    })
  )

  it.live("fails a start whose server exits before it answers, with how it exited and its log", () =>
    Effect.gen(function* () {
      // Prepare
      const broken: DbServerKind = { ...postgresServer, initialise: () => shell("true"), serve: () => shell("echo 'FATAL: lock file exists' >&2; exit 3") }
      // Act
      const error = yield* Effect.flip(Effect.scoped(startDbServer(broken, { name: "db-server-exits" })))
      // Assess
      assert.deepStrictEqual([error.engine, error.step, error.reason], ["postgres", "start", "exited (3) before it answered: FATAL: lock file exists"])
      assert.deepStrictEqual(yield* directoriesOf("db-server-exits"), [])
    })
  )
})
