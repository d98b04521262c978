import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect } from "effect"
import { DatabaseEndpoints } from "@backup-actions/aws"
import { LOCAL_DATABASE_SERVERS, LocalDatabaseEndpoints, localDatabaseServersEnvironment, parseEndpoint } from "./database-endpoints"

const restored = { instanceId: "ba-dump-0123", engine: "postgres", address: "ba-dump-0123.abc.us-east-1.rds.amazonaws.com", port: 5432 }
const restoredMariadb = { ...restored, instanceId: "ba-dump-4567", engine: "mariadb", address: "ba-dump-4567.abc.us-east-1.rds.amazonaws.com", port: 3306 }

/** Where the local stand-in connects a dump of `database`, with the setting as `settings` give it. */
const endpointOf = (database: typeof restored, settings: ReadonlyArray<readonly [string, string]>) =>
  Effect.flatMap(DatabaseEndpoints, (endpoints) => endpoints.endpointOf(database)).pipe(
    Effect.provide(LocalDatabaseEndpoints),
    Effect.withConfigProvider(ConfigProvider.fromMap(new Map(settings)))
  )

/** The same, with the setting set to `value`. */
const withServers = (value: string, database: typeof restored) => endpointOf(database, [[LOCAL_DATABASE_SERVERS, value]])

describe("a local server's endpoint", () => {
  it("reads host:port and [IPv6]:port, and refuses anything else", () => {
    // Act and assess
    assert.deepStrictEqual(parseEndpoint("127.0.0.1:54321"), { host: "127.0.0.1", port: 54_321 })
    assert.deepStrictEqual(parseEndpoint("[::1]:5432"), { host: "::1", port: 5432 })
    assert.deepStrictEqual(parseEndpoint("db.local:3306"), { host: "db.local", port: 3306 })
    for (const bad of ["127.0.0.1", "127.0.0.1:0", "127.0.0.1:70000", ":5432", "host:port"]) {
      assert.isUndefined(parseEndpoint(bad), bad)
    }
  })
})

describe("where a dump connects on the emulator", () => {
  it.effect("uses the restored instance's own endpoint when no local server is named", () =>
    Effect.gen(function* () {
      // Act
      const endpoint = yield* endpointOf(restored, [])
      // Assess
      assert.deepStrictEqual(endpoint, { host: restored.address, port: 5432 })
    })
  )

  it.effect("takes a bare host:port as the endpoint of every engine, and refuses a malformed one", () =>
    Effect.gen(function* () {
      // Act
      const forPostgres = yield* withServers("127.0.0.1:54321", restored)
      const forMariadb = yield* withServers("127.0.0.1:3307", restoredMariadb)
      const error = yield* Effect.flip(withServers("localhost", restored))
      // Assess
      assert.deepStrictEqual(forPostgres, { host: "127.0.0.1", port: 54_321 })
      assert.deepStrictEqual(forMariadb, { host: "127.0.0.1", port: 3307 })
      assert.strictEqual(error._tag, "DatabaseEndpointUnavailable")
      assert.strictEqual(error.instanceId, restored.instanceId)
      assert.strictEqual(error.reason, `${LOCAL_DATABASE_SERVERS} is neither host:port nor engine=host:port pairs separated by commas: "localhost"`)
    })
  )

  it.effect("chooses the endpoint of the restored instance's engine from engine=host:port pairs", () =>
    Effect.gen(function* () {
      // Prepare
      const servers = " postgres=127.0.0.1:5433, mariadb=[::1]:3307 "
      // Act
      const forPostgres = yield* withServers(servers, restored)
      const forMariadb = yield* withServers(servers, restoredMariadb)
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
        const error = yield* Effect.flip(withServers(value, restoredMariadb))
        // Assess
        assert.strictEqual(error.reason, `${LOCAL_DATABASE_SERVERS} is neither host:port nor engine=host:port pairs separated by commas: "${value}"`, value)
      }
    })
  )

  it.effect("fails with the engine named when the pairs have no endpoint for it", () =>
    Effect.gen(function* () {
      // Act
      const error = yield* Effect.flip(withServers("postgres=127.0.0.1:5433", restoredMariadb))
      // Assess
      assert.strictEqual(error.engine, "mariadb")
      assert.strictEqual(error.reason, `${LOCAL_DATABASE_SERVERS} names no endpoint for engine mariadb: "postgres=127.0.0.1:5433"`)
    })
  )

  it.effect("reads back the setting the local runtime writes for its servers", () =>
    Effect.gen(function* () {
      // Prepare
      const environment = localDatabaseServersEnvironment({ postgres: "127.0.0.1:5433", mariadb: "127.0.0.1:3307" })
      // Act
      const forPostgres = yield* endpointOf(restored, Object.entries(environment))
      const forMariadb = yield* endpointOf(restoredMariadb, Object.entries(environment))
      // Assess
      assert.deepStrictEqual(forPostgres, { host: "127.0.0.1", port: 5433 })
      assert.deepStrictEqual(forMariadb, { host: "127.0.0.1", port: 3307 })
      assert.deepStrictEqual(localDatabaseServersEnvironment({}), {})
    })
  )
})
