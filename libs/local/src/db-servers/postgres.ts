import { readdir } from "node:fs/promises"
import { join } from "node:path"
import { Effect } from "effect"
import { DbServerFailed, type DbServer, type DbServerKind } from "../db-server"

const SERVER_ROOT = "/usr/lib/postgresql"

/** Quotes an identifier for PostgreSQL SQL. */
export const quoteIdentifier = (name: string): string => `"${name.replaceAll('"', '""')}"`
/** Quotes a string literal for PostgreSQL SQL. */
export const quoteLiteral = (value: string): string => `'${value.replaceAll("'", "''")}'`

/** The programs of the newest server installed by Debian's packages (/usr/lib/postgresql/<version>/bin). */
const locate = Effect.tryPromise({
  try: () => readdir(SERVER_ROOT).then((versions) => versions.sort((left, right) => Number(right) - Number(left))),
  catch: () => new DbServerFailed({ engine: "postgres", step: "find its programs", reason: "PostgreSQL is not installed: run `npm run setup` (it installs Debian's postgresql package)" })
}).pipe(
  Effect.flatMap((versions) => {
    const newest = versions[0]
    return newest === undefined
      ? new DbServerFailed({ engine: "postgres", step: "find its programs", reason: `no PostgreSQL version under ${SERVER_ROOT}: run \`npm run setup\`` })
      : Effect.succeed((name: string) => join(SERVER_ROOT, newest, "bin", name))
  })
)

/**
 * A real PostgreSQL server, from Debian's postgresql package, run as the `postgres` user when
 * started by root (initdb refuses root). Its socket is in its private directory; socket logins
 * are trusted (the superuser's, for seeding and checking), TCP logins need a SCRAM password, as
 * on RDS. It stops on SIGINT, PostgreSQL's fast shutdown.
 */
export const postgresServer: DbServerKind = {
  engine: "postgres",
  serverUser: "postgres",
  adminDatabase: "postgres",
  stopSignal: "SIGINT",
  locate,
  initialise: (site) => ({
    command: site.program("initdb"),
    args: ["-D", site.data, "-U", "postgres", "--auth-local=trust", "--auth-host=scram-sha-256", "--encoding=UTF8", "--locale=C.UTF-8"]
  }),
  serve: (site) => ({
    command: site.program("postgres"),
    args: ["-D", site.data, "-c", `port=${site.port}`, "-c", "listen_addresses=127.0.0.1", "-c", `unix_socket_directories=${site.dir}`, "-c", "log_statement=none"]
  }),
  pidFile: (site) => join(site.data, "postmaster.pid"),
  client: (site, database) => ({
    command: site.program("psql"),
    args: ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", site.dir, "-p", String(site.port), "-U", "postgres", "-d", database, "-At"]
  }),
  setPasswordSql: (user, password) => `ALTER ROLE ${quoteIdentifier(user)} PASSWORD ${quoteLiteral(password)};`
}

/**
 * Seeds a database owned by `owner` (who logs in over TCP with `password`, as a restored
 * instance's master user does) with a few thousand rows across many column types: numbers,
 * money, text with quotes, tabs, newlines and non-ASCII, arrays, JSON, UUIDs, binary,
 * network addresses, intervals, times, and NULLs.
 */
export const seedShop = (server: DbServer, options: { readonly database: string; readonly owner: string; readonly password: string }) =>
  Effect.gen(function* () {
    yield* server.sql(
      "postgres",
      `CREATE ROLE ${quoteIdentifier(options.owner)} LOGIN CREATEDB PASSWORD ${quoteLiteral(options.password)};
       CREATE DATABASE ${quoteIdentifier(options.database)} OWNER ${quoteIdentifier(options.owner)};`
    )
    yield* server.sql(
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
  })

/** The tables of a database, each with its row count and an MD5 over its rows in key order. */
export const tableFingerprints = (server: DbServer, database: string) =>
  Effect.gen(function* () {
    const tables = (yield* server.sql(database, "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")).split("\n").filter((name) => name !== "")
    const fingerprints: Record<string, { readonly rows: number; readonly md5: string }> = {}
    for (const table of tables) {
      const [rows, md5] = (
        yield* server.sql(database, `SELECT count(*) || '|' || md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t.id), '')) FROM ${quoteIdentifier(table)} AS t`)
      )
        .trim()
        .split("|")
      fingerprints[table] = { rows: Number(rows), md5: md5 ?? "" }
    }
    return fingerprints
  })
