import { execFileSync, spawn, spawnSync } from "node:child_process"
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir, userInfo } from "node:os"
import { join } from "node:path"
import { setTimeout as sleep } from "node:timers/promises"
import { DescribeDBInstancesCommand } from "@aws-sdk/client-rds"
import { DescribeParametersCommand, GetParameterCommand } from "@aws-sdk/client-ssm"
import { Duration, Effect, Schedule, Schema } from "effect"
import { Rds, Ssm, awsCall } from "@backup-actions/aws"
import { freePort } from "@backup-actions/local"

/**
 * A real MariaDB server for the local runtime, the twin of the local PostgreSQL server: the
 * emulator restores MariaDB instances without any engine behind them, so the local stack points
 * the streamer's MariaDB dumps at this server instead (BACKUP_ACTIONS_DB_ENDPOINT_OVERRIDE,
 * `mariadb=host:port`). It comes from Debian's mariadb-server package, keeps its data, socket,
 * pid file and log in a directory under the OS temp dir, listens on a free port of 127.0.0.1
 * only, and runs as the `mysql` user when started by root.
 */
export interface LocalMariadb {
  readonly host: string
  readonly port: number
  /** `host:port`, this server's part of BACKUP_ACTIONS_DB_ENDPOINT_OVERRIDE. */
  readonly endpoint: string
  readonly dataDir: string
  /**
   * Runs SQL as the server's superuser over its own socket (the OS user's unix_socket login, no
   * password), the statements on the client's stdin (or a file's content); returns the client's
   * tab-separated output.
   */
  readonly sql: (database: string, statement: string, options?: { readonly file?: string }) => string
  readonly stop: () => void
}

const SERVER = "/usr/sbin/mariadbd"
const SERVER_USER = "mysql"

const isRoot = (): boolean => process.getuid?.() === 0

/** The server's programs, or a clear error when Debian's packages are missing. */
const requireInstalled = (): void => {
  const client = spawnSync("mariadb", ["--version"], { stdio: "ignore" })
  if (!existsSync(SERVER) || client.status !== 0) {
    throw new Error("MariaDB is not installed: run `npm run setup` (it installs Debian's mariadb-server and mariadb-client packages)")
  }
}

/** A command as the mysql user when we are root (mariadbd refuses to run as root). */
const asServerUser = (command: string, args: ReadonlyArray<string>): readonly [string, ReadonlyArray<string>] =>
  isRoot() ? ["runuser", ["-u", SERVER_USER, "--", command, ...args]] : [command, args]

/** Quotes an identifier for MariaDB SQL. */
export const quoteMariadbIdentifier = (name: string): string => `\`${name.replaceAll("`", "``")}\``
/** Quotes a string literal for MariaDB SQL (backslashes are escapes in its default SQL mode). */
export const quoteMariadbLiteral = (value: string): string => `'${value.replaceAll("\\", "\\\\").replaceAll("'", "''")}'`
/** An account that logs in from any host, as an RDS master user does. */
const anyHostAccount = (user: string): string => `${quoteMariadbLiteral(user)}@'%'`

/**
 * Whether a process still runs. Read from /proc rather than with signal 0: an exited child of
 * this process stays a zombie until Node's event loop reaps it, which a synchronous wait blocks.
 */
const isAlive = (pid: number): boolean => {
  const stat = join("/proc", String(pid), "stat")
  if (!existsSync(stat)) return false
  const state = readFileSync(stat, "utf8").split(") ")[1]?.charAt(0)
  return state !== undefined && state !== "Z" && state !== "X"
}

/** Blocks for a short while: `stop` is synchronous, like the PostgreSQL twin's, for afterAll hooks. */
const pause = (millis: number): void => {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, millis)
}

/** Sends `signal` and waits up to `millis` for the process to be gone; true when it is. */
const signalAndWait = (pid: number, signal: NodeJS.Signals, millis: number): boolean => {
  if (!isAlive(pid)) return true
  // It may exit between the check and the signal.
  process.kill(pid, signal)
  for (let waited = 0; waited < millis; waited += 50) {
    if (!isAlive(pid)) return true
    pause(50)
  }
  return !isAlive(pid)
}

/**
 * Initialises and starts a server. Only the superuser logs in over the socket (its OS user's
 * unix_socket login, for seeding and checking); every other account logs in over TCP with a
 * password, as on RDS. Grant tables are in force: the dump logs in with the master user and
 * the password the restorer keeps in SSM. Resolves once the server answers.
 */
export const startLocalMariadb = async (options: { readonly name: string }): Promise<LocalMariadb> => {
  requireInstalled()
  const port = await freePort()
  // Outside the checkout: the mysql user must reach its data directory, and a clone may sit
  // in a directory only its owner can enter.
  const dataDir = mkdtempSync(join(tmpdir(), `backup-actions-mariadb-${options.name}-`))
  const files = {
    data: join(dataDir, "data"),
    socket: join(dataDir, "mariadb.sock"),
    pid: join(dataDir, "mariadb.pid"),
    log: join(dataDir, "server.log")
  }
  mkdirSync(files.data)
  if (isRoot()) execFileSync("chown", ["-R", `${SERVER_USER}:${SERVER_USER}`, dataDir])
  const serverOptions = [
    `--datadir=${files.data}`,
    // Small redo log and buffer pool: a test server holds a few hundred rows.
    "--innodb-log-file-size=16M",
    "--innodb-buffer-pool-size=32M",
    "--character-set-server=utf8mb4",
    "--collation-server=utf8mb4_unicode_ci",
    "--skip-name-resolve"
  ]
  // --no-defaults first: nothing from the machine's /etc/mysql applies to this server.
  const [installCommand, installArgs] = asServerUser("mariadb-install-db", [
    "--no-defaults",
    ...serverOptions,
    "--auth-root-authentication-method=socket",
    "--skip-test-db"
  ])
  const installed = spawnSync(installCommand, [...installArgs], { stdio: "pipe", cwd: dataDir })
  if (installed.status !== 0) throw new Error(`mariadb-install-db failed: ${installed.stderr.toString().trim()}`)
  const [serverCommand, serverArgs] = asServerUser(SERVER, [
    "--no-defaults",
    ...serverOptions,
    `--socket=${files.socket}`,
    `--pid-file=${files.pid}`,
    `--log-error=${files.log}`,
    `--port=${port}`,
    "--bind-address=127.0.0.1",
    "--performance-schema=OFF"
  ])
  const child = spawn(serverCommand, [...serverArgs], { stdio: "ignore", cwd: dataDir, detached: true })
  child.unref()
  const exited = new Promise<never>((_, reject) => {
    child.once("exit", (code, signal) => reject(new Error(`mariadbd exited (${code ?? signal}) before it answered: ${readLog(files.log)}`)))
    child.once("error", (error) => reject(new Error(`mariadbd could not start: ${error.message}`)))
  })
  exited.catch(() => undefined)

  const superuser = isRoot() ? "root" : userInfo().username
  const sql = (database: string, statement: string, sqlOptions: { readonly file?: string } = {}): string =>
    execFileSync(
      "mariadb",
      ["--no-defaults", `--socket=${files.socket}`, `--user=${superuser}`, "--default-character-set=utf8mb4", "--batch", "--skip-column-names", database],
      { input: sqlOptions.file === undefined ? statement : readFileSync(sqlOptions.file), stdio: ["pipe", "pipe", "pipe"], maxBuffer: 256 * 1024 * 1024 }
    ).toString()

  const stop = (): void => {
    const recorded = existsSync(files.pid) ? Number(readFileSync(files.pid, "utf8").trim()) : Number.NaN
    const pids = [recorded, child.pid ?? Number.NaN].filter((pid) => Number.isInteger(pid) && pid > 0)
    for (const pid of pids) {
      if (!signalAndWait(pid, "SIGTERM", 20_000)) signalAndWait(pid, "SIGKILL", 5_000)
    }
    rmSync(dataDir, { recursive: true, force: true })
  }

  const answers = async (): Promise<void> => {
    for (let attempt = 0; attempt < 300; attempt += 1) {
      const probe = spawnSync("mariadb", ["--no-defaults", `--socket=${files.socket}`, `--user=${superuser}`, "--batch", "--execute", "SELECT 1"], { stdio: "ignore" })
      if (probe.status === 0) return
      await Promise.race([sleep(100), exited])
    }
    throw new Error(`mariadbd did not answer within 30 seconds: ${readLog(files.log)}`)
  }
  try {
    await answers()
  } catch (error) {
    stop()
    throw error
  }
  return { host: "127.0.0.1", port, endpoint: `127.0.0.1:${port}`, dataDir, sql, stop }
}

/** The last lines of the server's log, for a start that failed. */
const readLog = (file: string): string =>
  existsSync(file)
    ? readFileSync(file, "utf8")
        .trim()
        .split("\n")
        .slice(-5)
        .join(" | ")
    : "no server log"

/**
 * Seeds a database with a few hundred rows across many MariaDB column types (decimals,
 * booleans, microsecond datetimes, ENUM and SET, JSON, UUID, INET6, binary, BIT, YEAR, TIME,
 * text with quotes, tabs, newlines, backslashes and non-ASCII, NULLs), a foreign key, a view
 * and a trigger. `owner` gets the grants an RDS master user has, and logs in over TCP with
 * `password` from any host, as a restored instance's master user does.
 */
export const seedMariadbShop = (server: LocalMariadb, options: { readonly database: string; readonly owner: string; readonly password: string }): void => {
  const owner = anyHostAccount(options.owner)
  server.sql(
    "mysql",
    `CREATE USER ${owner} IDENTIFIED BY ${quoteMariadbLiteral(options.password)};
     GRANT ALL PRIVILEGES ON *.* TO ${owner} WITH GRANT OPTION;
     CREATE DATABASE ${quoteMariadbIdentifier(options.database)} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;`
  )
  server.sql(
    options.database,
    `CREATE TABLE customers (
       id INT PRIMARY KEY,
       name VARCHAR(200) NOT NULL,
       email VARCHAR(200) UNIQUE,
       balance DECIMAL(12, 2) NOT NULL,
       active BOOLEAN NOT NULL,
       created_at DATETIME(6) NOT NULL,
       tier ENUM('bronze', 'silver', 'gold'),
       channels SET('newsletter', 'sms', 'post'),
       profile JSON
     ) ENGINE=InnoDB;
     INSERT INTO customers
     SELECT seq,
            CONCAT('Customer ', seq, CASE WHEN seq % 7 = 0 THEN ' O''Brien\\t"quoted"\\nsecond line' WHEN seq % 11 = 0 THEN ' Zoë Ångström 東京' ELSE '' END),
            CONCAT('customer', seq, '@example.com'),
            ROUND((seq * 37.31) % 10000, 2),
            seq % 3 <> 0,
            TIMESTAMP '2024-01-01 00:00:00' + INTERVAL seq * 37 MINUTE + INTERVAL seq * 1001 MICROSECOND,
            IF(seq % 5 = 0, NULL, ELT(1 + seq % 3, 'bronze', 'silver', 'gold')),
            seq % 8,
            JSON_OBJECT('visits', seq % 50, 'newsletter', seq % 2 = 0, 'notes', IF(seq % 13 = 0, NULL, MD5(seq)))
     FROM seq_1_to_300;
     CREATE TABLE orders (
       id BIGINT PRIMARY KEY,
       customer_id INT NOT NULL,
       reference UUID NOT NULL,
       amount DECIMAL(10, 2) NOT NULL,
       placed_on DATE NOT NULL,
       weight_kg DOUBLE,
       receipt VARBINARY(64),
       note TEXT,
       CONSTRAINT orders_customer FOREIGN KEY (customer_id) REFERENCES customers (id),
       INDEX orders_by_customer (customer_id)
     ) ENGINE=InnoDB;
     INSERT INTO orders
     SELECT seq,
            1 + (seq * 7919) % 300,
            -- a version 4, RFC 4122 variant UUID: MariaDB refuses other variants
            CONCAT_WS('-', SUBSTR(hash, 1, 8), SUBSTR(hash, 9, 4), CONCAT('4', SUBSTR(hash, 14, 3)), CONCAT('8', SUBSTR(hash, 18, 3)), SUBSTR(hash, 21, 12)),
            ROUND((seq * 13.7) % 900 + 0.99, 2),
            DATE '2024-01-01' + INTERVAL seq % 365 DAY,
            IF(seq % 9 = 0, NULL, (seq % 1000) / 7.0),
            UNHEX(CONCAT(MD5(CONCAT('receipt', seq)), MD5(CONCAT('more', seq)))),
            IF(seq % 17 = 0, 'fragile\\\\handle with care; "upright"', NULL)
     FROM (SELECT seq, MD5(CONCAT('order', seq)) AS hash FROM seq_1_to_500) AS numbered;
     CREATE TABLE events (
       id INT AUTO_INCREMENT PRIMARY KEY,
       order_id BIGINT,
       kind VARCHAR(20) NOT NULL,
       source INET6,
       took TIME(3),
       model_year YEAR,
       mask BIT(8),
       ratio FLOAT,
       payload JSON,
       CONSTRAINT events_order FOREIGN KEY (order_id) REFERENCES orders (id)
     ) ENGINE=InnoDB;
     INSERT INTO events (order_id, kind, source, took, model_year, mask, ratio, payload)
     SELECT 1 + seq % 500,
            ELT(1 + seq % 4, 'created', 'paid', 'shipped', 'returned'),
            IF(seq % 2 = 0, CONCAT('::ffff:10.', seq % 256, '.', seq DIV 256 % 256, '.1'), CONCAT('2001:db8::', HEX(seq))),
            SEC_TO_TIME(seq % 86400 + 0.125),
            1990 + seq % 40,
            seq % 256,
            IF(seq % 6 = 0, NULL, seq / 8),
            JSON_OBJECT('attempt', seq % 3, 'ok', seq % 10 <> 0)
     FROM seq_1_to_400;
     CREATE DEFINER = ${owner} VIEW order_totals AS
       SELECT customer_id, COUNT(*) AS orders, SUM(amount) AS total FROM orders GROUP BY customer_id;
     CREATE DEFINER = ${owner} TRIGGER orders_amount_not_negative BEFORE INSERT ON orders
       FOR EACH ROW SET NEW.amount = GREATEST(NEW.amount, 0);`
  )
}

/**
 * The base tables of a database, each with its row count, the server's CHECKSUM TABLE and an
 * MD5 over its rows in key order (every column QUOTE()d, so NULLs and binaries count too).
 */
export const mariadbTableFingerprints = (
  server: LocalMariadb,
  database: string
): Record<string, { readonly rows: number; readonly checksum: string; readonly md5: string }> => {
  const lines = (output: string) => output.split("\n").filter((line) => line !== "")
  const tables = lines(
    server.sql(
      database,
      `SELECT table_name FROM information_schema.tables WHERE table_schema = ${quoteMariadbLiteral(database)} AND table_type = 'BASE TABLE' ORDER BY table_name`
    )
  )
  return Object.fromEntries(
    tables.map((table) => {
      const columns = lines(
        server.sql(
          database,
          `SELECT column_name FROM information_schema.columns WHERE table_schema = ${quoteMariadbLiteral(database)} AND table_name = ${quoteMariadbLiteral(table)} ORDER BY ordinal_position`
        )
      )
      const row = `CONCAT_WS(',', ${columns.map((column) => `QUOTE(${quoteMariadbIdentifier(column)})`).join(", ")})`
      const [rows, md5] = server
        .sql(
          database,
          `SET SESSION group_concat_max_len = 1073741824;
           SELECT COUNT(*), MD5(COALESCE(GROUP_CONCAT(${row} ORDER BY id SEPARATOR '\\n'), '')) FROM ${quoteMariadbIdentifier(table)};`
        )
        .trim()
        .split("\t")
      const checksum = server.sql(database, `CHECKSUM TABLE ${quoteMariadbIdentifier(table)} EXTENDED;`).trim().split("\t")[1] ?? ""
      return [table, { rows: Number(rows), checksum, md5: md5 ?? "" }]
    })
  )
}

/** The local server refused the new master password; the next poll tries again. */
export class PasswordNotApplied extends Schema.TaggedError<PasswordNotApplied>()("PasswordNotApplied", {
  parameter: Schema.String
}) {}

const RESTORED_PASSWORD_PARAMETER = /^\/backup-actions\/restored\/([^/]+)\/password$/

/**
 * The local stand-in for RDS applying a new master password to a restored MariaDB instance:
 * the restorer keeps it in SSM under /backup-actions/restored/<instance>/password and sets it
 * with ModifyDBInstance, which the emulator only records. This loop gives the local server's
 * master user each password that appears there for an instance of engine mariadb (the SQL on
 * the client's stdin over the superuser's socket, never on a command line), so that the
 * streamer logs in exactly as it would on AWS. Passwords of other engines' instances are left
 * to their own servers. `onPassword` sees each password applied, for tests that check no log
 * ever shows one.
 */
export const syncMariadbMasterPasswords = (server: LocalMariadb, options: { readonly user: string; readonly onPassword?: (password: string) => void }) =>
  Effect.gen(function* () {
    const ssm = yield* Ssm
    const rds = yield* Rds
    const handled = new Map<string, number>()
    const engineOf = (instanceId: string) =>
      awsCall("rds:DescribeDBInstances", (abortSignal) => rds.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: instanceId }), { abortSignal })).pipe(
        Effect.map((found) => found.DBInstances?.[0]?.Engine),
        Effect.catchIf(
          (error) => error.kind === "not-found",
          () => Effect.succeed(undefined)
        )
      )
    const poll = Effect.gen(function* () {
      const found = yield* awsCall("ssm:DescribeParameters", (abortSignal) =>
        ssm.send(new DescribeParametersCommand({ ParameterFilters: [{ Key: "Path", Option: "Recursive", Values: ["/backup-actions/restored"] }] }), { abortSignal })
      )
      for (const parameter of found.Parameters ?? []) {
        const name = parameter.Name ?? ""
        if (handled.get(name) === parameter.Version) continue
        const instanceId = RESTORED_PASSWORD_PARAMETER.exec(name)?.[1]
        const engine = instanceId === undefined ? undefined : yield* engineOf(instanceId)
        if (engine === "mariadb") {
          const value = yield* awsCall("ssm:GetParameter", (abortSignal) => ssm.send(new GetParameterCommand({ Name: name, WithDecryption: true }), { abortSignal }))
          const password = value.Parameter?.Value ?? ""
          options.onPassword?.(password)
          yield* Effect.try({
            try: () => server.sql("mysql", `ALTER USER ${anyHostAccount(options.user)} IDENTIFIED BY ${quoteMariadbLiteral(password)};`),
            // The client's error could quote the statement, and with it the password.
            catch: () => new PasswordNotApplied({ parameter: name })
          })
        }
        handled.set(name, parameter.Version ?? 0)
      }
    }).pipe(
      Effect.catchTags({
        AwsError: (error) => Effect.logWarning(`password sync: ${error.message}`),
        PasswordNotApplied: (error) => Effect.logWarning(`password sync: could not apply the password in ${error.parameter}`)
      })
    )
    return yield* Effect.repeat(poll, Schedule.spaced(Duration.millis(100)))
  })
