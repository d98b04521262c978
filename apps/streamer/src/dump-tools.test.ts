import { assert, describe, it } from "@effect/vitest"
import { Effect, Either, Redacted } from "effect"
import { dumpToolFor, runTool, spawnEnvironment, stderrReason, type DbConnection, type DumpTool, type ToolCommand } from "./dump-tools"

const PASSWORD = "Zq8pW3nR5tY7uI9oP1aS2dF4gH6jK0lX"
const connection: DbConnection = { host: "db.internal", port: 5432, user: "dbadmin", password: Redacted.make(PASSWORD) }

const toolFor = (engine: string): DumpTool =>
  Either.getOrElse(dumpToolFor(engine), () => {
    throw new Error(`no tool for ${engine}`)
  })

/** Everything of a command that a process listing or a log could show. */
const visible = (command: ToolCommand): string => JSON.stringify({ command: command.command, args: command.args, env: command.env, password: String(command.password) })

describe("dump command lines", () => {
  it("dumps a PostgreSQL database with pg_dump, naming the database in PGDATABASE and the password only in PGPASSWORD", () => {
    // Act
    const command = toolFor("postgres").dumpDatabase(connection, "shop=prod")
    // Assess
    assert.strictEqual(command.command, "pg_dump")
    assert.deepStrictEqual(command.args, ["--format=plain", "--no-password", "--encoding=UTF8", "--quote-all-identifiers"])
    assert.deepInclude(command.env, { PGHOST: "db.internal", PGPORT: "5432", PGUSER: "dbadmin", PGDATABASE: "shop=prod" })
    assert.notInclude(visible(command), PASSWORD)
    assert.strictEqual(spawnEnvironment(command)["PGPASSWORD"], PASSWORD)
  })

  it("lists PostgreSQL databases from the postgres database, leaving out templates and rdsadmin", () => {
    // Act
    const command = toolFor("postgres").listDatabases(connection)
    // Assess
    assert.strictEqual(command.command, "psql")
    assert.strictEqual(command.env["PGDATABASE"], "postgres")
    assert.include(command.args.join(" "), "NOT datistemplate AND datname NOT IN ('rdsadmin')")
    assert.include(command.args, "--no-password")
    assert.notInclude(visible(command), PASSWORD)
  })

  it("dumps MySQL with mysqldump and MariaDB with mariadb-dump over TCP, in one consistent transaction, the password only in MYSQL_PWD", () => {
    for (const [engine, binary] of [
      ["mysql", "mysqldump"],
      ["mariadb", "mariadb-dump"]
    ] as const) {
      // Act
      const command = toolFor(engine).dumpDatabase({ ...connection, port: 3306 }, "shop")
      // Assess
      assert.strictEqual(command.command, binary)
      assert.deepStrictEqual(command.args, [
        "--host=db.internal",
        "--port=3306",
        "--user=dbadmin",
        "--protocol=TCP",
        "--single-transaction",
        "--quick",
        "--routines",
        "--triggers",
        "--events",
        "--hex-blob",
        "--no-tablespaces",
        "--default-character-set=utf8mb4",
        "shop"
      ])
      assert.notInclude(visible(command), PASSWORD)
      assert.strictEqual(spawnEnvironment(command)["MYSQL_PWD"], PASSWORD)
      assert.isUndefined(spawnEnvironment(command)["PGPASSWORD"])
    }
  })

  it("lists a database's tables and computes their checksums with the engine's client, the script on its stdin and the password only in its variable", () => {
    for (const [engine, client, variable] of [
      ["postgres", "psql", "PGPASSWORD"],
      ["mysql", "mysql", "MYSQL_PWD"],
      ["mariadb", "mariadb", "MYSQL_PWD"]
    ] as const) {
      // Prepare
      const tool = toolFor(engine)
      const tables = [{ name: "orders", schema: engine === "postgres" ? "public" : undefined, table: "orders", columns: ["id"] }]
      // Act
      const listing = tool.listTables(connection, "shop")
      const checksums = tool.checksumTables(connection, "shop", tables)
      // Assess
      assert.strictEqual(tool.checksumDialect, engine === "postgres" ? "postgres" : "mysql")
      for (const command of [listing, checksums]) {
        assert.strictEqual(command.command, client)
        assert.notInclude(visible(command), PASSWORD)
        assert.strictEqual(spawnEnvironment(command)[variable], PASSWORD)
      }
      if (engine === "postgres") assert.strictEqual(checksums.env["PGDATABASE"], "shop")
      else assert.include(checksums.args, "--database=shop")
      assert.include(checksums.input ?? "", "orders")
      assert.isTrue((checksums.input ?? "").trimEnd().endsWith("COMMIT;"))
      assert.isUndefined(listing.input)
    }
  })

  it("refuses an engine that has no dump tool, naming it", () => {
    // Act
    const result = dumpToolFor("sqlserver-ex")
    // Assess
    assert.isTrue(Either.isLeft(result))
    assert.strictEqual(Either.isLeft(result) ? result.left.engine : "", "sqlserver-ex")
  })

  it("reads PostgreSQL's NUL-separated and MySQL's line-separated database lists with their sizes", () => {
    // Act
    const postgres = toolFor("postgres").parseDatabaseList("postgres\t7631663\0shop\t9400111\0")
    const mysql = toolFor("mysql").parseDatabaseList("inventory\t16384\nshop\t0\n")
    // Assess
    assert.deepStrictEqual(postgres, [
      { name: "postgres", sizeBytes: 7_631_663 },
      { name: "shop", sizeBytes: 9_400_111 }
    ])
    assert.deepStrictEqual(mysql, [
      { name: "inventory", sizeBytes: 16_384 },
      { name: "shop", sizeBytes: 0 }
    ])
  })
})

describe("dump tool errors", () => {
  it("keep the last lines of stderr on one line, with the password taken out", () => {
    // Prepare
    const stderr = ["line 1", "line 2", "", "line 3", `pg_dump: error: connection to server failed: password "${PASSWORD}" refused`, "line 5", "line 6"].join("\n")
    // Act
    const reason = stderrReason(stderr, Redacted.make(PASSWORD))
    // Assess
    assert.strictEqual(reason, 'line 2 | line 3 | pg_dump: error: connection to server failed: password "<redacted>" refused | line 5 | line 6')
  })

  it.effect("hands the password to the tool in its environment only, and reports a refused login without it", () =>
    Effect.gen(function* () {
      // Prepare: a stand-in tool that checks its environment, then one that echoes the password to stderr and fails
      const accepting: ToolCommand = {
        command: "sh",
        args: ["-c", 'test "$PGPASSWORD" = "$EXPECTED" && printf ok'],
        env: { EXPECTED: PASSWORD },
        passwordVariable: "PGPASSWORD",
        password: Redacted.make(PASSWORD)
      }
      const refusing: ToolCommand = {
        ...accepting,
        env: {},
        args: ["-c", 'echo "psql: error: FATAL:  password authentication failed for user \\"dbadmin\\" ($PGPASSWORD)" >&2; exit 2']
      }
      // Act
      const output = yield* runTool(accepting)
      const error = yield* Effect.flip(runTool(refusing).pipe(Effect.catchTag("ToolTimedOut", Effect.die)))
      // Assess
      assert.strictEqual(output, "ok")
      assert.strictEqual(error.exitCode, 2)
      assert.isTrue(error.authenticationFailed)
      assert.strictEqual(error.reason, 'psql: error: FATAL:  password authentication failed for user "dbadmin" (<redacted>)')
    })
  )

  it.effect("say that a tool is not installed", () =>
    Effect.gen(function* () {
      // Act
      const error = yield* Effect.flip(
        runTool({ command: "no-such-dump-tool", args: [], env: {}, passwordVariable: "PGPASSWORD", password: Redacted.make(PASSWORD) }).pipe(
          Effect.catchTag("ToolTimedOut", Effect.die)
        )
      )
      // Assess
      assert.strictEqual(error.reason, "no-such-dump-tool is not installed")
      assert.isFalse(error.authenticationFailed)
    })
  )
})
