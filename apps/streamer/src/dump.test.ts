import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect, Option, Redacted } from "effect"
import type { ChunkSource } from "./archive-pipeline"
import { databaseEndpoint, describeDumpFailure, dumpKeys, dumpSource } from "./dump"
import type { ToolCommand } from "./dump-tools"
import { ToolTimedOut } from "./exec"

const PASSWORD = "Zq8pW3nR5tY7uI9oP1aS2dF4gH6jK0lX"

const shell = (script: string): ToolCommand => ({ command: "sh", args: ["-c", script], env: {}, passwordVariable: "PGPASSWORD", password: Redacted.make(PASSWORD) })

const drain = <E>(source: ChunkSource<E>) =>
  Effect.gen(function* () {
    let bytes = 0
    while (true) {
      const job = yield* source.pull
      if (Option.isNone(job)) return bytes
      const produced = yield* job.value.produce
      bytes += Option.match(produced.bytes, { onNone: () => job.value.inputBytes, onSome: (chunk) => chunk.length })
    }
  })

const restored = { instanceId: "ba-dump-0123", engine: "postgres", engineVersion: "16.4", address: "ba-dump-0123.abc.us-east-1.rds.amazonaws.com", port: 5432, user: "dbadmin", passwordParameter: "/p" }
const restoredMariadb = { ...restored, instanceId: "ba-dump-4567", engine: "mariadb", engineVersion: "10.11.9", address: "ba-dump-4567.abc.us-east-1.rds.amazonaws.com", port: 3306 }

/** Runs an effect with BACKUP_ACTIONS_DB_ENDPOINT_OVERRIDE set to `value`. */
const withOverride = <A, E>(value: string, effect: Effect.Effect<A, E>) =>
  effect.pipe(Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["BACKUP_ACTIONS_DB_ENDPOINT_OVERRIDE", value]]))))

describe("a dump tool's output as a chunk source", () => {
  it.scoped("yields everything the tool wrote when it exits cleanly", () =>
    Effect.gen(function* () {
      // Prepare
      const source = yield* dumpSource(shell("head -c 5000000 /dev/zero"))
      // Act
      const bytes = yield* drain(source)
      // Assess
      assert.strictEqual(bytes, 5_000_000)
    })
  )

  it.scopedLive("yields the output of a tool that exited before the first chunk was read", () =>
    Effect.gen(function* () {
      // Prepare: the dump of an empty database, written and done at once
      const source = yield* dumpSource(shell("printf 'SET client_encoding = UTF8;\\n'"))
      yield* Effect.sleep("200 millis")
      // Act
      const bytes = yield* drain(source)
      // Assess
      assert.strictEqual(bytes, "SET client_encoding = UTF8;\n".length)
    })
  )

  it.scoped("fails after the output when the tool exits non-zero, with its last stderr lines and no password", () =>
    Effect.gen(function* () {
      // Prepare: some SQL, then a lost connection
      const source = yield* dumpSource(shell('printf "CREATE TABLE t (id int);\\n"; echo "pg_dump: error: Dumping the contents of table \\"t\\" failed ($PGPASSWORD)" >&2; exit 1'))
      // Act
      const error = yield* Effect.flip(drain(source))
      // Assess
      assert.strictEqual(error._tag, "ToolFailed")
      assert.strictEqual(error._tag === "ToolFailed" ? error.reason : "", 'pg_dump: error: Dumping the contents of table "t" failed (<redacted>)')
    })
  )
})

describe("where a dump connects", () => {
  it.effect("uses the restored instance's endpoint when no override is set", () =>
    Effect.gen(function* () {
      // Act
      const endpoint = yield* databaseEndpoint(restored).pipe(Effect.withConfigProvider(ConfigProvider.fromMap(new Map())))
      // Assess
      assert.deepStrictEqual(endpoint, { host: restored.address, port: 5432 })
    })
  )

  it.effect("uses BACKUP_ACTIONS_DB_ENDPOINT_OVERRIDE when it is set, and refuses a malformed one", () =>
    Effect.gen(function* () {
      // Act
      const endpoint = yield* databaseEndpoint(restored).pipe(
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["BACKUP_ACTIONS_DB_ENDPOINT_OVERRIDE", "127.0.0.1:54321"]])))
      )
      const error = yield* Effect.flip(
        databaseEndpoint(restored).pipe(Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["BACKUP_ACTIONS_DB_ENDPOINT_OVERRIDE", "localhost"]]))))
      )
      // Assess
      assert.deepStrictEqual(endpoint, { host: "127.0.0.1", port: 54_321 })
      assert.strictEqual(error._tag, "InvalidEndpointOverride")
      assert.strictEqual(error.value, "localhost")
    })
  )

  it.effect("takes a bare host:port as the endpoint of every engine", () =>
    Effect.gen(function* () {
      // Act
      const endpoint = yield* withOverride("127.0.0.1:3307", databaseEndpoint(restoredMariadb))
      // Assess
      assert.deepStrictEqual(endpoint, { host: "127.0.0.1", port: 3307 })
    })
  )

  it.effect("chooses the endpoint of the restored instance's engine from engine=host:port pairs", () =>
    Effect.gen(function* () {
      // Prepare
      const override = " postgres=127.0.0.1:5433, mariadb=[::1]:3307 "
      // Act
      const forPostgres = yield* withOverride(override, databaseEndpoint(restored))
      const forMariadb = yield* withOverride(override, databaseEndpoint(restoredMariadb))
      // Assess
      assert.deepStrictEqual(forPostgres, { host: "127.0.0.1", port: 5433 })
      assert.deepStrictEqual(forMariadb, { host: "::1", port: 3307 })
    })
  )

  it.effect("refuses a malformed list of pairs as a whole, with the value in the reason", () =>
    Effect.gen(function* () {
      // Prepare
      const malformed = [
        "postgres=127.0.0.1:5433,127.0.0.1:3307",
        "postgres=127.0.0.1:5433,postgres=127.0.0.1:5434",
        "postgres=127.0.0.1:5433,",
        "postgres=localhost",
        "=127.0.0.1:5433",
        "Postgres=127.0.0.1:5433",
        "mariadb=127.0.0.1:3307;postgres=127.0.0.1:5433"
      ]
      for (const value of malformed) {
        // Act
        const error = yield* Effect.flip(withOverride(value, databaseEndpoint(restoredMariadb)))
        // Assess
        assert.strictEqual(error._tag, "InvalidEndpointOverride", value)
        assert.strictEqual(
          describeDumpFailure(error),
          `BACKUP_ACTIONS_DB_ENDPOINT_OVERRIDE is neither host:port nor engine=host:port pairs separated by commas: "${value}"`
        )
      }
    })
  )

  it.effect("fails with the engine named when the pairs have no endpoint for it", () =>
    Effect.gen(function* () {
      // Act
      const error = yield* Effect.flip(withOverride("postgres=127.0.0.1:5433", databaseEndpoint(restoredMariadb)))
      // Assess
      assert.strictEqual(error._tag, "NoEndpointOverrideForEngine")
      assert.strictEqual(describeDumpFailure(error), 'BACKUP_ACTIONS_DB_ENDPOINT_OVERRIDE names no endpoint for engine mariadb: "postgres=127.0.0.1:5433"')
    })
  )
})

describe("a dump tool that timed out", () => {
  it("is reported with the tool, the limit that ran out and its last stderr lines", () => {
    // Prepare
    const error = new ToolTimedOut({ tool: "pg_dump", limit: "inactivity", timeout: "30m", stderr: 'pg_dump: dumping contents of table "public.events"' })
    // Act
    const reason = describeDumpFailure(error)
    // Assess
    assert.strictEqual(reason, 'pg_dump wrote nothing for 30m and was killed; its last stderr: pg_dump: dumping contents of table "public.events"')
  })
})

describe("dump archive keys", () => {
  it("put one archive per database and the manifest under the snapshot's dump prefix, names encoded", () => {
    // Act
    const keys = dumpKeys("awsbackup:job-0123", "zstd")
    // Assess
    assert.strictEqual(keys.prefix, "archives/rds/awsbackup:job-0123/dump/")
    assert.strictEqual(keys.manifest, "archives/rds/awsbackup:job-0123/dump/manifest.ndjson")
    assert.strictEqual(keys.database("shop"), "archives/rds/awsbackup:job-0123/dump/shop.sql.zst")
    assert.strictEqual(keys.database("a/b c"), "archives/rds/awsbackup:job-0123/dump/a%2Fb%20c.sql.zst")
  })
})
