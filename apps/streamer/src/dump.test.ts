import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect, Option, Redacted } from "effect"
import type { ChunkSource } from "./archive-pipeline"
import { databaseEndpoint, dumpKeys, dumpSource } from "./dump"
import type { ToolCommand } from "./dump-tools"

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
      assert.strictEqual(error.value, "localhost")
    })
  )
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
