import { Either, ParseResult, Schema } from "effect"

/*
 * The manifest the streamer writes beside the dumps of a DB instance (`<prefix>manifest.ndjson`),
 * as its readers decode it: a header line for the instance, then one line per database. Each
 * line may carry, per table, the row count and a checksum that the server computed from the data
 * at dump time (`tables`); manifests written before they were recorded still decode.
 *
 * The table checksums are computed the same way at dump time (on the restored instance, which
 * nothing else writes to) and after a restore (on the target server), by the queries below, so
 * that the same rows give the same checksum on any server of the same engine:
 *
 * - each row becomes one text: PostgreSQL's text form of the whole row (`ROW(r.*)::text`), with
 *   the session settings that change how values print pinned (time zone UTC, ISO dates, hex
 *   bytea, float digits, interval style); MySQL and MariaDB: every column `QUOTE()`d (NULL as the
 *   word NULL, strings quoted and escaped), as bytes, joined with commas, time zone UTC;
 * - the row's MD5 is cut into four 32-bit quarters, and each quarter is summed over the table
 *   as an unsigned number (exact, arbitrary precision: no overflow, and unlike XOR a duplicated
 *   row is not cancelled out);
 * - the checksum is the MD5 (hex) of the four sums written in decimal and joined by "/".
 *
 * The sums do not depend on the order of the rows, so no key or sort is needed, a table without
 * a primary key is checked too, and the server reads each table once, in one consistent
 * read-only transaction per database.
 */

const Checksum = Schema.Struct({ algorithm: Schema.Literal("SHA256"), type: Schema.Literal("COMPOSITE"), value: Schema.String })

/** The method of `tables`' checksums, recorded with them. */
export const TABLE_CHECKSUM_METHOD = "row-md5-quarter-sums/1"

/** One table of a dumped database: its rows and their checksum at dump time. */
export const TableChecksum = Schema.Struct({
  /** `schema.table` in PostgreSQL, the table's name in MySQL and MariaDB (whose database is the schema). */
  table: Schema.String,
  rows: Schema.Number,
  checksum: Schema.String
})
export type TableChecksum = typeof TableChecksum.Type

/** The first line of a dump manifest (the streamer's dump.ts writes it). */
export const DumpManifestHeader = Schema.Struct({
  kind: Schema.Literal("backup-actions/dump-manifest"),
  version: Schema.Literal(1),
  snapshotId: Schema.String,
  recoveryPointArn: Schema.String,
  /** The engine as RDS names it: postgres, mysql or mariadb. */
  engine: Schema.String,
  engineVersion: Schema.optional(Schema.String),
  /** The dump tool's `--version`. */
  tool: Schema.String,
  format: Schema.Literal("sql"),
  compression: Schema.Literal("zstd", "gzip"),
  databases: Schema.Array(Schema.String),
  sqlBytes: Schema.Number,
  archiveBytes: Schema.Number
})
export type DumpManifestHeader = typeof DumpManifestHeader.Type

/** One database's dump. */
export const DumpManifestLine = Schema.Struct({
  database: Schema.String,
  /** The key of its archive, `<prefix><database, URI-encoded>.sql.<zst|gz>`. */
  archive: Schema.String,
  sqlBytes: Schema.Number,
  /** SHA-256 (hex) of the SQL as the dump tool wrote it. */
  sqlSha256: Schema.String,
  archiveBytes: Schema.Number,
  checksum: Checksum,
  /** How `tables` was computed (TABLE_CHECKSUM_METHOD); absent in older manifests. */
  tableChecksum: Schema.optional(Schema.String),
  /** Every table with its rows and checksum at dump time, by name; absent in older manifests. */
  tables: Schema.optional(Schema.Array(TableChecksum))
})
export type DumpManifestLine = typeof DumpManifestLine.Type

export interface DumpManifest {
  readonly header: DumpManifestHeader
  readonly databases: ReadonlyArray<DumpManifestLine>
}

const decodeHeader = Schema.decodeUnknownEither(Schema.parseJson(DumpManifestHeader))
const decodeLine = Schema.decodeUnknownEither(Schema.parseJson(DumpManifestLine))

/** A whole dump manifest decoded, or the reason it is not one (the line named). */
export const parseDumpManifest = (text: string): Either.Either<DumpManifest, string> => {
  const [first, ...rest] = text.split("\n")
  if (first === undefined || first.trim() === "") return Either.left("the manifest is empty")
  const header = decodeHeader(first)
  if (Either.isLeft(header)) return Either.left(`the manifest's header is not a dump manifest this version reads: ${ParseResult.TreeFormatter.formatErrorSync(header.left)}`)
  const databases: Array<DumpManifestLine> = []
  for (const [index, line] of rest.entries()) {
    if (line.trim() === "") continue
    const decoded = decodeLine(line)
    if (Either.isLeft(decoded)) return Either.left(`manifest line ${index + 2}: ${ParseResult.TreeFormatter.formatErrorSync(decoded.left)}`)
    databases.push(decoded.right)
  }
  return Either.right({ header: header.right, databases })
}

/** The two SQL dialects whose table checksums are defined: PostgreSQL's, and MySQL's and MariaDB's. */
export type ChecksumDialect = "postgres" | "mysql"

/** The dialect of an engine as RDS names it, when it has one. */
export const checksumDialectOf = (engine: string): ChecksumDialect | undefined =>
  engine === "postgres" ? "postgres" : engine === "mysql" || engine === "mariadb" ? "mysql" : undefined

/** A table to check: how the checksum names it, and how SQL reaches it. */
export interface TableToCheck {
  readonly name: string
  readonly schema: string | undefined
  readonly table: string
  /** Its columns in order (MySQL and MariaDB; PostgreSQL takes the whole row). */
  readonly columns: ReadonlyArray<string>
}

const pgIdentifier = (name: string): string => `"${name.replaceAll('"', '""')}"`
const pgLiteral = (value: string): string => `'${value.replaceAll("'", "''")}'`
const mysqlIdentifier = (name: string): string => `\`${name.replaceAll("`", "``")}\``
/** A MySQL string literal that reads the same whatever the SQL mode (backslashes escaped only when they are escapes). */
const mysqlLiteral = (value: string): string => `_utf8mb4 X'${Buffer.from(value, "utf8").toString("hex")}'`

/**
 * Lists the tables whose data a dump holds, one JSON array per output line: PostgreSQL's
 * ordinary tables outside the system schemas and not of an extension, `[schema, table]`;
 * MySQL's and MariaDB's base tables of the current database, `[table, column]` per column in order.
 */
export const tableListQuery = (dialect: ChecksumDialect): string =>
  dialect === "postgres"
    ? "SELECT json_build_array(n.nspname, c.relname)::text FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace " +
      "WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%' " +
      "AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e') " +
      "ORDER BY n.nspname, c.relname;"
    : "SELECT JSON_ARRAY(c.table_name, c.column_name) FROM information_schema.columns c JOIN information_schema.tables t " +
      "ON t.table_schema = c.table_schema AND t.table_name = c.table_name " +
      "WHERE t.table_schema = DATABASE() AND t.table_type = 'BASE TABLE' ORDER BY c.table_name, c.ordinal_position;"

const jsonLines = (stdout: string): ReadonlyArray<unknown> =>
  stdout
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "")
    .map((line) => {
      try {
        return JSON.parse(line) as unknown
      } catch {
        throw new Error(`not a JSON line: ${line.slice(0, 80)}`)
      }
    })

const pairOfStrings = (value: unknown): readonly [string, string] => {
  if (Array.isArray(value) && value.length === 2 && typeof value[0] === "string" && typeof value[1] === "string") return [value[0], value[1]]
  throw new Error(`not a pair of names: ${JSON.stringify(value).slice(0, 80)}`)
}

/** The tables of `tableListQuery`'s output. Throws on output that is not its. */
export const parseTableList = (dialect: ChecksumDialect, stdout: string): ReadonlyArray<TableToCheck> => {
  const pairs = jsonLines(stdout).map(pairOfStrings)
  if (dialect === "postgres") return pairs.map(([schema, table]) => ({ name: `${schema}.${table}`, schema, table, columns: [] }))
  const tables = new Map<string, Array<string>>()
  for (const [table, column] of pairs) tables.set(table, [...(tables.get(table) ?? []), column])
  return [...tables].map(([table, columns]) => ({ name: table, schema: undefined, table, columns }))
}

/** Pins what changes how a PostgreSQL value prints; reads every table in one snapshot. */
const POSTGRES_SESSION = [
  "SET DateStyle = 'ISO, YMD';",
  "SET IntervalStyle = 'postgres';",
  "SET TimeZone = 'UTC';",
  "SET extra_float_digits = 1;",
  "SET bytea_output = 'hex';",
  "SET lc_monetary = 'C';",
  "SET xmloption = 'content';",
  "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;"
]

const MYSQL_SESSION = ["SET NAMES utf8mb4;", "SET time_zone = '+00:00';", "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ;", "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY;"]

/** The four sums of the row hashes' 32-bit quarters, as one MD5: see the top of this file. */
const postgresChecksum = (table: TableToCheck): string => {
  const quarter = (index: number) => `coalesce(sum(('x' || lpad(substr(h, ${index * 8 + 1}, 8), 16, '0'))::bit(64)::bigint), 0)::text`
  const sums = [0, 1, 2, 3].map(quarter).join(" || '/' || ")
  const from = `${pgIdentifier(table.schema ?? "public")}.${pgIdentifier(table.table)}`
  return `SELECT json_build_array(${pgLiteral(table.name)}, count(*), md5(${sums}))::text FROM (SELECT md5(ROW(r.*)::text) AS h FROM ${from} AS r) AS hashed;`
}

const mysqlChecksum = (table: TableToCheck): string => {
  const quarter = (index: number) => `COALESCE(SUM(CAST(CONV(SUBSTRING(h, ${index * 8 + 1}, 8), 16, 10) AS UNSIGNED)), 0)`
  const sums = [0, 1, 2, 3].map(quarter).join(", '/', ")
  const row = `CONCAT_WS(',', ${table.columns.map((column) => `CAST(QUOTE(${mysqlIdentifier(column)}) AS BINARY)`).join(", ")})`
  return `SELECT JSON_ARRAY(${mysqlLiteral(table.name)}, COUNT(*), MD5(CONCAT(${sums}))) FROM (SELECT MD5(${row}) AS h FROM ${mysqlIdentifier(table.table)}) AS hashed;`
}

/**
 * One script that prints, for each table, one JSON line `[name, rows, checksum]`, all read in
 * one consistent read-only transaction. For psql with `--no-psqlrc --quiet --tuples-only
 * --no-align`, or the mysql / mariadb client with `--batch --raw --skip-column-names`.
 */
export const tableChecksumScript = (dialect: ChecksumDialect, tables: ReadonlyArray<TableToCheck>): string =>
  [
    ...(dialect === "postgres" ? POSTGRES_SESSION : MYSQL_SESSION),
    ...tables.map(dialect === "postgres" ? postgresChecksum : mysqlChecksum),
    "COMMIT;"
  ].join("\n") + "\n"

/** The tables' checksums from `tableChecksumScript`'s output, by name. Throws on output that is not its. */
export const parseTableChecksums = (stdout: string): ReadonlyArray<TableChecksum> =>
  jsonLines(stdout).map((value) => {
    if (Array.isArray(value) && value.length === 3 && typeof value[0] === "string" && typeof value[2] === "string") {
      const rows = Number(value[1])
      if (Number.isSafeInteger(rows)) return { table: value[0], rows, checksum: value[2] }
    }
    throw new Error(`not a table checksum: ${JSON.stringify(value).slice(0, 80)}`)
  })

/** What differs between the tables recorded at dump time and those found after a restore, one line per table. */
export const compareTableChecksums = (recorded: ReadonlyArray<TableChecksum>, found: ReadonlyArray<TableChecksum>): ReadonlyArray<string> => {
  const byName = new Map(found.map((table) => [table.table, table]))
  const problems: Array<string> = []
  for (const table of recorded) {
    const restored = byName.get(table.table)
    byName.delete(table.table)
    if (restored === undefined) problems.push(`${table.table}: missing (${table.rows} rows at dump time)`)
    else if (restored.rows !== table.rows) problems.push(`${table.table}: ${restored.rows} rows, ${table.rows} at dump time`)
    else if (restored.checksum !== table.checksum) problems.push(`${table.table}: ${restored.rows} rows as at dump time, but their checksum differs (${restored.checksum}, ${table.checksum} at dump time)`)
  }
  for (const table of byName.values()) problems.push(`${table.table}: not in the dump (${table.rows} rows)`)
  return problems
}
