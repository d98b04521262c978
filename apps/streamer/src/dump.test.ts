import { assert, describe, it } from "@effect/vitest"
import { Effect, Option, Redacted } from "effect"
import { DatabaseEndpointUnavailable } from "@backup-actions/aws"
import type { ChunkSource } from "./archive-pipeline"
import { describeDumpFailure, dumpKeys, dumpSource } from "./dump"
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

describe("a restored instance with no endpoint to connect to", () => {
  it("is reported with the instance, its engine and the reason", () => {
    // Prepare
    const error = new DatabaseEndpointUnavailable({ instanceId: "ba-dump-0123", engine: "mariadb", reason: "no server is configured for mariadb" })
    // Act
    const reason = describeDumpFailure(error)
    // Assess
    assert.strictEqual(reason, "no endpoint to connect to ba-dump-0123 (mariadb): no server is configured for mariadb")
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
