import { createHash } from "node:crypto"
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Readable } from "node:stream"
import { assert, describe, it } from "@effect/vitest"
import { Either, Redacted } from "effect"
import {
  compareTableChecksums,
  parseDumpManifest,
  parseTableChecksums,
  parseTableList,
  tableChecksumScript,
  type DumpManifest,
  type DumpManifestLine
} from "@backup-actions/archive"
import { clientReason, clientRuns, describeTarget, parseDatabaseUrl, plan, runClient, summaryLines, verifiedSql, type DatabaseTarget } from "./database"

const PASSWORD = "s3cr=t/p@ss"

const target = (url: string): DatabaseTarget => {
  const parsed = parseDatabaseUrl(url)
  if (Either.isLeft(parsed)) throw new Error(parsed.left)
  return parsed.right
}

const line = (database: string, extra: Partial<DumpManifestLine> = {}): DumpManifestLine => ({
  database,
  archive: `archives/rds/snap-1/dump/${database}.sql.zst`,
  sqlBytes: 100,
  sqlSha256: "a".repeat(64),
  archiveBytes: 50,
  checksum: { algorithm: "SHA256", type: "COMPOSITE", value: "abc-1" },
  ...extra
})

const header = {
  kind: "backup-actions/dump-manifest",
  version: 1,
  snapshotId: "snap-1",
  recoveryPointArn: "arn:aws:rds:us-east-1:123456789012:snapshot:snap-1",
  engine: "postgres",
  engineVersion: "16.4",
  tool: "pg_dump (PostgreSQL) 16.4",
  format: "sql",
  compression: "zstd",
  databases: ["postgres", "shop"],
  sqlBytes: 200,
  archiveBytes: 100
} as const

const manifest = (databases: ReadonlyArray<DumpManifestLine>): DumpManifest => ({ header, databases })

describe("the --to-database URL", () => {
  it("reads a PostgreSQL URL with its user, password, port, database and sslmode, the password kept redacted", () => {
    // Act
    const parsed = target(`postgresql://restorer:${encodeURIComponent(PASSWORD)}@db.example.com:6432/shop%20copy?sslmode=require`)
    // Assess
    assert.strictEqual(parsed.dialect, "postgres")
    assert.strictEqual(parsed.client, "psql")
    assert.strictEqual(parsed.host, "db.example.com")
    assert.strictEqual(parsed.port, 6432)
    assert.strictEqual(parsed.user, "restorer")
    assert.strictEqual(parsed.database, "shop copy")
    assert.strictEqual(parsed.sslMode, "require")
    assert.strictEqual(parsed.password === undefined ? "" : Redacted.value(parsed.password), PASSWORD)
    assert.notInclude(String(parsed.password), PASSWORD)
    assert.strictEqual(describeTarget(parsed), "postgresql://restorer@db.example.com:6432/shop%20copy")
  })

  it("reads mysql:// and mariadb:// with the default port, without a database or a password, each with its own client", () => {
    // Act
    const mysql = target("mysql://admin@10.0.0.5")
    const mariadb = target("mariadb://admin:pw@[::1]:3307/")
    // Assess
    assert.deepStrictEqual([mysql.dialect, mysql.client, mysql.port, mysql.database, mysql.password], ["mysql", "mysql", 3306, undefined, undefined])
    assert.deepStrictEqual([mariadb.dialect, mariadb.client, mariadb.host, mariadb.port, mariadb.database], ["mysql", "mariadb", "::1", 3307, undefined])
    assert.strictEqual(describeTarget(mariadb, "shop"), "mariadb://admin@[::1]:3307/shop")
  })

  it("refuses a scheme it cannot restore into, a URL without a user or host, and a path of two databases, never quoting the password", () => {
    // Act
    const reasons = ["sqlserver://sa:hunter2@db:1433/shop", "postgresql://db.example.com/shop", "not a url", "mysql://u:hunter2@db/one/two"].map((url) =>
      Either.match(parseDatabaseUrl(url), { onLeft: (reason) => reason, onRight: () => "(parsed)" })
    )
    // Assess
    assert.match(reasons[0] ?? "", /cannot restore into a sqlserver:\/\/ server: it restores into PostgreSQL \(postgresql:\/\/\), MySQL \(mysql:\/\/\) or MariaDB \(mariadb:\/\/\)/)
    assert.match(reasons[1] ?? "", /names no user/)
    assert.match(reasons[2] ?? "", /needs a URL like postgresql:\/\//)
    assert.match(reasons[3] ?? "", /names more than one database \(one\/two\)/)
    for (const reason of reasons) assert.notInclude(reason, "hunter2")
  })
})

describe("the client runs", () => {
  it("never put the password in the arguments, and connect PostgreSQL through PG* settings, MySQL over TCP", () => {
    // Prepare
    const postgres = target(`postgresql://restorer:${encodeURIComponent(PASSWORD)}@db:5432/shop`)
    const mariadb = target(`mariadb://restorer:${encodeURIComponent(PASSWORD)}@db:3306/shop`)
    // Act
    const runs = [
      clientRuns.query(postgres, "shop", "SELECT 1;"),
      clientRuns.checksums(postgres, "shop", "SELECT 1;"),
      clientRuns.ensureDatabase(postgres, "shop"),
      clientRuns.query(mariadb, "shop", "SELECT 1;"),
      clientRuns.ensureDatabase(mariadb, "shop")
    ]
    // Assess
    for (const run of runs) {
      assert.notInclude(JSON.stringify(run.args), PASSWORD)
      assert.notInclude(JSON.stringify(run.env), PASSWORD)
    }
    assert.deepStrictEqual(runs[0]?.env, {
      PGHOST: "db",
      PGPORT: "5432",
      PGUSER: "restorer",
      PGDATABASE: "shop",
      PGCONNECT_TIMEOUT: "20",
      PGAPPNAME: "backup-actions restore",
      PGSSLMODE: "prefer"
    })
    assert.include(runs[0]?.args ?? [], "--set=ON_ERROR_STOP=1")
    assert.deepStrictEqual(runs[0]?.limit.kind, "runtime")
    assert.deepStrictEqual(runs[1]?.limit.kind, "inactivity")
    assert.strictEqual(runs[2]?.env["PGDATABASE"], "postgres")
    assert.includeMembers([...(runs[3]?.args ?? [])], ["--host=db", "--port=3306", "--user=restorer", "--protocol=TCP", "--database=shop", "--raw"])
    assert.strictEqual(runs[4]?.input, "CREATE DATABASE IF NOT EXISTS `shop` CHARACTER SET utf8mb4;\n")
  })

  it("hand the password to the client in PGPASSWORD only, and a failing client's reason has it taken out", async () => {
    // Prepare: a stand-in psql that shows its arguments and environment, then echoes the password on stderr and fails
    const bin = mkdtempSync(join(tmpdir(), "restore-database-client-"))
    writeFileSync(join(bin, "psql"), '#!/bin/sh\necho "args: $*"\necho "password: $PGPASSWORD database: $PGDATABASE"\ncat >/dev/null\nif [ "$PGDATABASE" = fail ]; then echo "FATAL: password $PGPASSWORD refused" >&2; exit 2; fi\n')
    chmodSync(join(bin, "psql"), 0o755)
    const path = process.env["PATH"] ?? ""
    process.env["PATH"] = `${bin}:${path}`
    const postgres = target(`postgresql://restorer:${encodeURIComponent(PASSWORD)}@db:5432/shop`)
    try {
      // Act
      const output = await runClient(postgres, clientRuns.query(postgres, "shop", "SELECT 1;"))
      const failure = await runClient(postgres, clientRuns.query(postgres, "fail", "SELECT 1;")).then(
        () => "(succeeded)",
        (error: Error) => error.message
      )
      // Assess
      assert.include(output, `password: ${PASSWORD} database: shop`)
      assert.notInclude(output.split("\n")[0] ?? "", PASSWORD)
      assert.strictEqual(failure, "psql exited with 2: FATAL: password <redacted> refused")
    } finally {
      process.env["PATH"] = path
      rmSync(bin, { recursive: true, force: true })
    }
  })

  it("stop a loading client before it sees the end of SQL that is not what the dump tool wrote", async () => {
    // Prepare: a stand-in psql that marks the end of its input, and SQL cut short
    const bin = mkdtempSync(join(tmpdir(), "restore-database-load-"))
    const mark = join(bin, "saw-the-end")
    writeFileSync(join(bin, "psql"), `#!/bin/sh\ncat >/dev/null\ntouch "${mark}"\n`)
    chmodSync(join(bin, "psql"), 0o755)
    const path = process.env["PATH"] ?? ""
    process.env["PATH"] = `${bin}:${path}`
    const postgres = target("postgresql://restorer@db:5432/shop")
    const whole = Buffer.from("CREATE TABLE t (id int);\nINSERT INTO t VALUES (1);\n")
    const expected = { sqlBytes: whole.length, sqlSha256: createHash("sha256").update(whole).digest("hex") }
    try {
      // Act
      const cut = await runClient(postgres, clientRuns.load(postgres, "shop", Readable.from([whole.subarray(0, 30)]).pipe(verifiedSql(expected)))).then(
        () => "(loaded)",
        (error: Error) => error.message
      )
      const sawTheEndOfCut = existsSync(mark)
      const loaded = await runClient(postgres, clientRuns.load(postgres, "shop", Readable.from([whole]).pipe(verifiedSql(expected))))
      // Assess
      assert.match(cut, /^psql was stopped: the SQL read \(30 bytes, SHA-256 [0-9a-f]{64}\) is not what the dump tool wrote \(51 bytes, SHA-256 [0-9a-f]{64}\); its end was not loaded/)
      assert.isFalse(sawTheEndOfCut)
      assert.strictEqual(loaded, "")
      assert.isTrue(existsSync(mark))
    } finally {
      process.env["PATH"] = path
      rmSync(bin, { recursive: true, force: true })
    }
  })

  it("keep the last five lines of stderr on one line", () => {
    // Act
    const reason = clientReason(["1", "2", "", "3", "4", "5", `6 ${PASSWORD}`].join("\n"), Redacted.make(PASSWORD))
    // Assess
    assert.strictEqual(reason, "2 | 3 | 4 | 5 | 6 <redacted>")
  })
})

describe("which dumps a restore loads, and where", () => {
  it("loads one archive into the database the URL names, or into one of its own name", () => {
    // Prepare
    const dumps = manifest([line("postgres"), line("shop")])
    const archive = { bucket: "b", key: "archives/rds/snap-1/dump/shop.sql.zst" }
    // Act
    const named = plan(archive, dumps, target("postgresql://u@h/copy"))
    const unnamed = plan(archive, dumps, target("postgresql://u@h"))
    // Assess
    assert.deepStrictEqual(Either.getOrUndefined(named)?.map((entry) => [entry.dump.database, entry.into]), [["shop", "copy"]])
    assert.deepStrictEqual(Either.getOrUndefined(unnamed)?.map((entry) => [entry.dump.database, entry.into]), [["shop", "shop"]])
  })

  it("loads every database of a manifest under its own name, and refuses a URL naming one database for several", () => {
    // Prepare
    const dumps = manifest([line("postgres"), line("shop")])
    const whole = { bucket: "b", key: "archives/rds/snap-1/dump/manifest.ndjson" }
    // Act
    const all = plan(whole, dumps, target("postgresql://u@h"))
    const refused = plan(whole, dumps, target("postgresql://u@h/copy"))
    const missing = plan({ bucket: "b", key: "archives/rds/snap-1/dump/other.sql.zst" }, dumps, target("postgresql://u@h"))
    // Assess
    assert.deepStrictEqual(Either.getOrUndefined(all)?.map((entry) => entry.into), ["postgres", "shop"])
    assert.strictEqual(Either.isLeft(refused) ? refused.left._tag : "", "UsageError")
    assert.match(Either.isLeft(refused) ? refused.left.message : "", /holds 2 databases \(postgres, shop\)/)
    assert.strictEqual(Either.isLeft(missing) ? missing.left._tag : "", "OperationFailed")
  })
})

describe("the dump manifest", () => {
  it("decodes a line with its tables, and an older line without them", () => {
    // Prepare
    const tables = [{ table: "public.orders", rows: 5, checksum: "c".repeat(32) }]
    const text = [header, { ...line("shop"), tableChecksum: "row-md5-quarter-sums/1", tables }, line("postgres")].map((entry) => JSON.stringify(entry)).join("\n") + "\n"
    // Act
    const parsed = parseDumpManifest(text)
    // Assess
    const databases = Either.getOrUndefined(parsed)?.databases
    assert.deepStrictEqual(databases?.[0]?.tables, tables)
    assert.strictEqual(databases?.[1]?.tables, undefined)
  })

  it("names the line that is not a dump's", () => {
    // Act
    const parsed = parseDumpManifest(`${JSON.stringify(header)}\n${JSON.stringify({ database: "shop" })}\n`)
    // Assess
    assert.match(Either.isLeft(parsed) ? parsed.left : "", /^manifest line 2: /)
  })
})

describe("the table checksums", () => {
  it("read each PostgreSQL row whole, with the settings that change how values print pinned, in one read-only snapshot", () => {
    // Act
    const script = tableChecksumScript("postgres", [{ name: "sales.order lines", schema: "sales", table: "order lines", columns: [] }])
    // Assess
    assert.include(script, "SET TimeZone = 'UTC';")
    assert.include(script, "SET bytea_output = 'hex';")
    assert.include(script, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;")
    assert.include(script, `FROM (SELECT md5(ROW(r.*)::text) AS h FROM "sales"."order lines" AS r) AS hashed;`)
    assert.include(script, "json_build_array('sales.order lines', count(*), md5(")
    assert.isTrue(script.trimEnd().endsWith("COMMIT;"))
  })

  it("read every MySQL column QUOTE()d as bytes, names quoted, the time zone UTC", () => {
    // Act
    const script = tableChecksumScript("mysql", [{ name: "odd`name", schema: undefined, table: "odd`name", columns: ["id", "note"] }])
    // Assess
    assert.include(script, "SET time_zone = '+00:00';")
    assert.include(script, "CONCAT_WS(',', CAST(QUOTE(`id`) AS BINARY), CAST(QUOTE(`note`) AS BINARY))")
    assert.include(script, "FROM `odd``name`")
    assert.include(script, `JSON_ARRAY(_utf8mb4 X'${Buffer.from("odd`name").toString("hex")}', COUNT(*)`)
  })

  it("are read from the servers' JSON lines, tables grouped with their columns in order", () => {
    // Act
    const postgres = parseTableList("postgres", '["public","orders"]\n["sales","a\\tb"]\n')
    const mysql = parseTableList("mysql", '["orders", "id"]\n["orders", "amount"]\n["users", "id"]\n')
    const checksums = parseTableChecksums('["orders", 5, "abc"]\n')
    // Assess
    assert.deepStrictEqual(
      postgres.map((table) => table.name),
      ["public.orders", "sales.a\tb"]
    )
    assert.deepStrictEqual(
      mysql.map((table) => [table.name, table.columns]),
      [
        ["orders", ["id", "amount"]],
        ["users", ["id"]]
      ]
    )
    assert.deepStrictEqual(checksums, [{ table: "orders", rows: 5, checksum: "abc" }])
    assert.throws(() => parseTableChecksums("shop\t1000"), /not a JSON line/)
  })

  it("name each table that differs: missing, extra, other row count or other checksum", () => {
    // Prepare
    const recorded = [
      { table: "a", rows: 1, checksum: "x" },
      { table: "b", rows: 2, checksum: "y" },
      { table: "c", rows: 3, checksum: "z" },
      { table: "d", rows: 4, checksum: "w" }
    ]
    const found = [
      { table: "a", rows: 1, checksum: "x" },
      { table: "b", rows: 3, checksum: "y" },
      { table: "c", rows: 3, checksum: "q" },
      { table: "e", rows: 1, checksum: "v" }
    ]
    // Act
    const problems = compareTableChecksums(recorded, found)
    // Assess
    assert.deepStrictEqual(problems, [
      "b: 3 rows, 2 at dump time",
      "c: 3 rows as at dump time, but their checksum differs (q, z at dump time)",
      "d: missing (4 rows at dump time)",
      "e: not in the dump (1 rows)"
    ])
    assert.deepStrictEqual(summaryLines(found.slice(0, 1)), ["  a           1 rows  x"])
  })
})
