import { access } from "node:fs/promises"
import { userInfo } from "node:os"
import { join } from "node:path"
import { Effect } from "effect"
import { runCommand } from "../command"
import { DbServerFailed, type DbServer, type DbServerKind } from "../db-server"

const SERVER = "/usr/sbin/mariadbd"

/** Quotes an identifier for MariaDB SQL. */
export const quoteMariadbIdentifier = (name: string): string => `\`${name.replaceAll("`", "``")}\``
/** Quotes a string literal for MariaDB SQL (backslashes are escapes in its default SQL mode). */
export const quoteMariadbLiteral = (value: string): string => `'${value.replaceAll("\\", "\\\\").replaceAll("'", "''")}'`
/** An account that logs in from any host, as an RDS master user does. */
const anyHostAccount = (user: string): string => `${quoteMariadbLiteral(user)}@'%'`

const isRoot = (): boolean => process.getuid?.() === 0

/** The server and its client, or what installs them. */
const locate = Effect.all([
  Effect.tryPromise(() => access(SERVER)),
  runCommand("mariadb", ["--version"], { timeout: "30 seconds" })
]).pipe(
  Effect.mapError(
    () =>
      new DbServerFailed({
        engine: "mariadb",
        step: "find its programs",
        reason: "MariaDB is not installed: run `npm run setup` (it installs Debian's mariadb-server and mariadb-client packages)"
      })
  ),
  Effect.as((name: string) => (name === "mariadbd" ? SERVER : name))
)

/** Options of both the installation and the server: nothing from the machine's /etc/mysql applies (--no-defaults first). */
const serverOptions = (data: string) => [
  "--no-defaults",
  `--datadir=${data}`,
  // Small redo log and buffer pool: a test server holds a few hundred rows.
  "--innodb-log-file-size=16M",
  "--innodb-buffer-pool-size=32M",
  "--character-set-server=utf8mb4",
  "--collation-server=utf8mb4_unicode_ci",
  "--skip-name-resolve"
]

const socketOf = (dir: string): string => join(dir, "mariadb.sock")

/**
 * A real MariaDB server, from Debian's mariadb-server package, run as the `mysql` user when
 * started by root. Only its superuser logs in over its socket (the OS user's unix_socket login);
 * grant tables are in force, so every other account logs in over TCP with a password, as on RDS.
 */
export const mariadbServer: DbServerKind = {
  engine: "mariadb",
  serverUser: "mysql",
  adminDatabase: "mysql",
  stopSignal: "SIGTERM",
  locate,
  initialise: (site) => ({
    command: site.program("mariadb-install-db"),
    args: [...serverOptions(site.data), "--auth-root-authentication-method=socket", "--skip-test-db"]
  }),
  serve: (site) => ({
    command: site.program("mariadbd"),
    args: [
      ...serverOptions(site.data),
      `--socket=${socketOf(site.dir)}`,
      `--pid-file=${join(site.dir, "mariadb.pid")}`,
      `--log-error=${site.log}`,
      `--port=${site.port}`,
      "--bind-address=127.0.0.1",
      "--performance-schema=OFF"
    ]
  }),
  pidFile: (site) => join(site.dir, "mariadb.pid"),
  client: (site, database) => ({
    command: site.program("mariadb"),
    args: [
      "--no-defaults",
      `--socket=${socketOf(site.dir)}`,
      `--user=${isRoot() ? "root" : userInfo().username}`,
      "--default-character-set=utf8mb4",
      "--batch",
      "--skip-column-names",
      database
    ]
  }),
  setPasswordSql: (user, password) => `ALTER USER ${anyHostAccount(user)} IDENTIFIED BY ${quoteMariadbLiteral(password)};`
}

/**
 * Seeds a database with a few hundred rows across many MariaDB column types (decimals,
 * booleans, microsecond datetimes, ENUM and SET, JSON, UUID, INET6, binary, BIT, YEAR, TIME,
 * text with quotes, tabs, newlines, backslashes and non-ASCII, NULLs), a foreign key, a view
 * and a trigger. `owner` gets the grants an RDS master user has, and logs in over TCP with
 * `password` from any host, as a restored instance's master user does.
 */
export const seedMariadbShop = (server: DbServer, options: { readonly database: string; readonly owner: string; readonly password: string }) =>
  Effect.gen(function* () {
    const owner = anyHostAccount(options.owner)
    yield* server.sql(
      "mysql",
      `CREATE USER ${owner} IDENTIFIED BY ${quoteMariadbLiteral(options.password)};
       GRANT ALL PRIVILEGES ON *.* TO ${owner} WITH GRANT OPTION;
       CREATE DATABASE ${quoteMariadbIdentifier(options.database)} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;`
    )
    yield* server.sql(
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
  })

/**
 * The base tables of a database, each with its row count, the server's CHECKSUM TABLE and an
 * MD5 over its rows in key order (every column QUOTE()d, so NULLs and binaries count too).
 */
export const mariadbTableFingerprints = (server: DbServer, database: string) =>
  Effect.gen(function* () {
    const lines = (output: string) => output.split("\n").filter((line) => line !== "")
    const tables = lines(
      yield* server.sql(
        database,
        `SELECT table_name FROM information_schema.tables WHERE table_schema = ${quoteMariadbLiteral(database)} AND table_type = 'BASE TABLE' ORDER BY table_name`
      )
    )
    const fingerprints: Record<string, { readonly rows: number; readonly checksum: string; readonly md5: string }> = {}
    for (const table of tables) {
      const columns = lines(
        yield* server.sql(
          database,
          `SELECT column_name FROM information_schema.columns WHERE table_schema = ${quoteMariadbLiteral(database)} AND table_name = ${quoteMariadbLiteral(table)} ORDER BY ordinal_position`
        )
      )
      const row = `CONCAT_WS(',', ${columns.map((column) => `QUOTE(${quoteMariadbIdentifier(column)})`).join(", ")})`
      const [rows, md5] = (
        yield* server.sql(
          database,
          `SET SESSION group_concat_max_len = 1073741824;
           SELECT COUNT(*), MD5(COALESCE(GROUP_CONCAT(${row} ORDER BY id SEPARATOR '\\n'), '')) FROM ${quoteMariadbIdentifier(table)};`
        )
      )
        .trim()
        .split("\t")
      const checksum = (yield* server.sql(database, `CHECKSUM TABLE ${quoteMariadbIdentifier(table)} EXTENDED;`)).trim().split("\t")[1] ?? ""
      fingerprints[table] = { rows: Number(rows), checksum, md5: md5 ?? "" }
    }
    return fingerprints
  })
