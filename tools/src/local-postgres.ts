import { execFileSync, spawnSync } from "node:child_process"
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { DescribeParametersCommand, GetParameterCommand } from "@aws-sdk/client-ssm"
import { Duration, Effect, Schedule } from "effect"
import { Ssm, awsCall } from "@backup-actions/aws"
import { freePort } from "@backup-actions/local"

/**
 * A real PostgreSQL server for the local runtime. The emulator restores DB instances
 * without any engine behind them, so the local stack points the streamer at this server
 * instead (BACKUP_ACTIONS_DB_ENDPOINT_OVERRIDE). It comes from Debian's postgresql
 * package, lives under .local, listens on a free loopback port, and runs as the
 * `postgres` user when started by root (initdb refuses root).
 */
export interface LocalPostgres {
  readonly host: string
  readonly port: number
  /** `host:port`, the value of BACKUP_ACTIONS_DB_ENDPOINT_OVERRIDE. */
  readonly endpoint: string
  readonly dataDir: string
  /** Runs SQL as the superuser over the server's own socket (trusted, no password); returns psql's output. */
  readonly psql: (database: string, sql: string, options?: { readonly file?: string }) => string
  readonly stop: () => void
}

/** The newest server installed by Debian's packages (/usr/lib/postgresql/<version>/bin). */
const serverBinaries = (): string => {
  const root = "/usr/lib/postgresql"
  const versions = existsSync(root)
    ? readdirSync(root)
        .filter((version) => existsSync(join(root, version, "bin", "initdb")))
        .sort((left, right) => Number(right) - Number(left))
    : []
  const newest = versions[0]
  if (newest === undefined) throw new Error("PostgreSQL is not installed: run `npm run setup` (it installs Debian's postgresql package)")
  return join(root, newest, "bin")
}

const isRoot = (): boolean => process.getuid?.() === 0

/** A server command, as the postgres user when we are root. */
const asServerUser = (command: string, args: ReadonlyArray<string>, cwd: string): void => {
  const [file, argv] = isRoot() ? ["runuser", ["-u", "postgres", "--", command, ...args]] : [command, [...args]]
  const result = spawnSync(file, argv, { stdio: "pipe", cwd })
  if (result.status !== 0) throw new Error(`${command} failed: ${result.stderr.toString().trim()}`)
}

/** Quotes an identifier for SQL. */
export const quoteIdentifier = (name: string): string => `"${name.replaceAll('"', '""')}"`
/** Quotes a string literal for SQL. */
export const quoteLiteral = (value: string): string => `'${value.replaceAll("'", "''")}'`

/**
 * Initialises and starts a server: local socket connections are trusted (they are the
 * superuser's, for seeding and checking), TCP connections need a SCRAM password, as RDS does.
 */
export const startLocalPostgres = async (options: { readonly name: string }): Promise<LocalPostgres> => {
  const bin = serverBinaries()
  const port = await freePort()
  // Outside the checkout: the postgres user must reach its data directory, and a clone may sit
  // in a directory only its owner can enter.
  const dataDir = mkdtempSync(join(tmpdir(), `backup-actions-postgres-${options.name}-`))
  if (isRoot()) execFileSync("chown", ["postgres:postgres", dataDir])
  asServerUser(join(bin, "initdb"), ["-D", dataDir, "-U", "postgres", "--auth-local=trust", "--auth-host=scram-sha-256", "--encoding=UTF8", "--locale=C.UTF-8"], dataDir)
  asServerUser(join(bin, "pg_ctl"), [
    "-D",
    dataDir,
    "-l",
    join(dataDir, "server.log"),
    "-w",
    "-o",
    `-c port=${port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=${dataDir} -c log_statement=none`,
    "start"
  ], dataDir)
  const psql = (database: string, sql: string, psqlOptions: { readonly file?: string } = {}): string =>
    execFileSync(
      join(bin, "psql"),
      ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", dataDir, "-p", String(port), "-U", "postgres", "-d", database, "-At", ...(psqlOptions.file === undefined ? [] : ["-f", psqlOptions.file])],
      { input: sql, stdio: ["pipe", "pipe", "pipe"], maxBuffer: 256 * 1024 * 1024 }
    ).toString()
  const stop = (): void => {
    spawnSync(isRoot() ? "runuser" : join(bin, "pg_ctl"), isRoot() ? ["-u", "postgres", "--", join(bin, "pg_ctl"), "-D", dataDir, "-m", "fast", "-w", "stop"] : ["-D", dataDir, "-m", "fast", "-w", "stop"], {
      stdio: "ignore",
      cwd: dataDir
    })
    rmSync(dataDir, { recursive: true, force: true })
  }
  return { host: "127.0.0.1", port, endpoint: `127.0.0.1:${port}`, dataDir, psql, stop }
}

/**
 * Seeds a database owned by `owner` (who logs in over TCP with `password`, as a restored
 * instance's master user does) with a few thousand rows across many column types: numbers,
 * money, text with quotes, tabs, newlines and non-ASCII, arrays, JSON, UUIDs, binary,
 * network addresses, intervals, times, and NULLs.
 */
export const seedShop = (server: LocalPostgres, options: { readonly database: string; readonly owner: string; readonly password: string }): void => {
  server.psql(
    "postgres",
    `CREATE ROLE ${quoteIdentifier(options.owner)} LOGIN CREATEDB PASSWORD ${quoteLiteral(options.password)};
     CREATE DATABASE ${quoteIdentifier(options.database)} OWNER ${quoteIdentifier(options.owner)};`
  )
  server.psql(
    options.database,
    `SET ROLE ${quoteIdentifier(options.owner)};
     CREATE TABLE customers (
       id integer PRIMARY KEY,
       name text NOT NULL,
       email varchar(200) UNIQUE,
       balance numeric(12, 2) NOT NULL,
       active boolean NOT NULL,
       created_at timestamptz NOT NULL,
       tags text[],
       profile jsonb
     );
     INSERT INTO customers
     SELECT i,
            'Customer ' || i || CASE WHEN i % 7 = 0 THEN E' O''Brien\\t"quoted"\\nsecond line' WHEN i % 11 = 0 THEN ' Zoë Ångström 東京' ELSE '' END,
            'customer' || i || '@example.com',
            round((i * 37.31) % 10000, 2),
            i % 3 <> 0,
            timestamptz '2024-01-01 00:00:00+00' + i * interval '37 minutes',
            CASE WHEN i % 5 = 0 THEN NULL ELSE ARRAY['tier-' || (i % 4), 'region-' || (i % 3)] END,
            jsonb_build_object('visits', i % 50, 'newsletter', i % 2 = 0, 'notes', CASE WHEN i % 13 = 0 THEN NULL ELSE md5(i::text) END)
     FROM generate_series(1, 2000) AS i;
     CREATE TABLE orders (
       id bigint PRIMARY KEY,
       customer_id integer NOT NULL REFERENCES customers (id),
       reference uuid NOT NULL,
       amount numeric(10, 2) NOT NULL,
       placed_on date NOT NULL,
       weight_kg double precision,
       receipt bytea,
       note text
     );
     INSERT INTO orders
     SELECT i,
            1 + (i * 7919) % 2000,
            md5('order' || i)::uuid,
            round(((i * 13.7) % 900 + 0.99)::numeric, 2),
            date '2024-01-01' + (i % 365),
            CASE WHEN i % 9 = 0 THEN NULL ELSE (i % 1000) / 7.0 END,
            decode(md5('receipt' || i) || md5('more' || i), 'hex'),
            CASE WHEN i % 17 = 0 THEN E'fragile\\\\handle with care; "upright"' ELSE NULL END
     FROM generate_series(1, 5000) AS i;
     CREATE INDEX orders_by_customer ON orders (customer_id);
     CREATE TABLE events (
       id serial PRIMARY KEY,
       order_id bigint REFERENCES orders (id),
       kind varchar(20) NOT NULL,
       source inet,
       took interval,
       at_time time,
       payload json
     );
     INSERT INTO events (order_id, kind, source, took, at_time, payload)
     SELECT 1 + (i % 5000),
            (ARRAY['created', 'paid', 'shipped', 'returned'])[1 + i % 4],
            ('10.' || (i % 256) || '.' || (i / 256 % 256) || '.1')::inet,
            (i % 600) * interval '1 second',
            time '00:00' + (i % 86400) * interval '1 second',
            json_build_object('attempt', i % 3, 'ok', i % 10 <> 0)
     FROM generate_series(1, 3000) AS i;`
  )
}

/** The tables of a database, each with its row count and an MD5 over its rows in key order. */
export const tableFingerprints = (server: LocalPostgres, database: string): Record<string, { readonly rows: number; readonly md5: string }> => {
  const tables = server
    .psql(database, "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")
    .split("\n")
    .filter((name) => name !== "")
  return Object.fromEntries(
    tables.map((table) => {
      const [rows, md5] = server
        .psql(database, `SELECT count(*) || '|' || md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t.id), '')) FROM ${quoteIdentifier(table)} AS t`)
        .trim()
        .split("|")
      return [table, { rows: Number(rows), md5: md5 ?? "" }]
    })
  )
}

/**
 * The local stand-in for RDS applying a new master password: the restorer keeps it in SSM
 * under /backup-actions/restored/<instance>/password and sets it with ModifyDBInstance,
 * which the emulator only records. This loop gives the local server's role each password
 * that appears there (over the superuser's socket, the SQL on psql's stdin, never on a
 * command line), so that the streamer logs in exactly as it would on AWS.
 * `onPassword` sees each password, for tests that check no log ever shows one.
 */
export const syncMasterPasswords = (server: LocalPostgres, options: { readonly role: string; readonly onPassword?: (password: string) => void }) =>
  Effect.gen(function* () {
    const ssm = yield* Ssm
    const applied = new Map<string, number>()
    const poll = Effect.gen(function* () {
      const found = yield* awsCall("ssm:DescribeParameters", (abortSignal) =>
        ssm.send(new DescribeParametersCommand({ ParameterFilters: [{ Key: "Path", Option: "Recursive", Values: ["/backup-actions/restored"] }] }), { abortSignal })
      )
      for (const parameter of found.Parameters ?? []) {
        const name = parameter.Name ?? ""
        if (applied.get(name) === parameter.Version) continue
        const value = yield* awsCall("ssm:GetParameter", (abortSignal) => ssm.send(new GetParameterCommand({ Name: name, WithDecryption: true }), { abortSignal }))
        const password = value.Parameter?.Value ?? ""
        options.onPassword?.(password)
        server.psql("postgres", `ALTER ROLE ${quoteIdentifier(options.role)} PASSWORD ${quoteLiteral(password)};`)
        applied.set(name, parameter.Version ?? 0)
      }
    }).pipe(Effect.catchAll((error) => Effect.logWarning(`password sync: ${error.message}`)))
    return yield* Effect.repeat(poll, Schedule.spaced(Duration.millis(100)))
  })
