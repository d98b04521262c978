import { spawn } from "node:child_process"
import { createHash } from "node:crypto"
import { Readable, Transform, type TransformCallback } from "node:stream"
import { GetObjectCommand } from "@aws-sdk/client-s3"
import { Console, Duration, Effect, Either, Redacted } from "effect"
import {
  checksumDialectOf,
  compareTableChecksums,
  parseDumpManifest,
  parseTableChecksums,
  parseTableList,
  tableChecksumScript,
  tableListQuery,
  type ChecksumDialect,
  type DumpManifest,
  type DumpManifestLine,
  type TableChecksum
} from "@backup-actions/archive"
import { S3, awsCall } from "@backup-actions/aws"
import { CompositeChecksum, describeArchiveObject, openArchiveStream, sameComposite } from "../archive-object"
import { CheckFailed, OperationFailed, UsageError } from "../errors"
import { Progress } from "../progress"
import { readThrough } from "../read-through"
import { manifestBeside, s3Url, type S3Location } from "../s3-url"

/** The server to restore into, from `--to-database <url>`. The password stays redacted until a client is spawned. */
export interface DatabaseTarget {
  readonly dialect: ChecksumDialect
  /** The client that loads the SQL and runs the checks: psql, mysql or mariadb. */
  readonly client: "psql" | "mysql" | "mariadb"
  readonly host: string
  readonly port: number
  readonly user: string
  /** Absent when the URL has none: the client then finds it as it would (PGPASSWORD, MYSQL_PWD, ~/.pgpass, ~/.my.cnf). */
  readonly password: Redacted.Redacted<string> | undefined
  /** The database the URL names, if it names one. */
  readonly database: string | undefined
  /** PostgreSQL's sslmode from the URL's query (`?sslmode=require`); `prefer` when absent. */
  readonly sslMode: string | undefined
}

const SCHEMES: Record<string, { readonly dialect: ChecksumDialect; readonly client: DatabaseTarget["client"]; readonly port: number }> = {
  "postgresql:": { dialect: "postgres", client: "psql", port: 5432 },
  "postgres:": { dialect: "postgres", client: "psql", port: 5432 },
  "mysql:": { dialect: "mysql", client: "mysql", port: 3306 },
  "mariadb:": { dialect: "mysql", client: "mariadb", port: 3306 }
}

const EXAMPLE = "postgresql://user:password@host:5432/database, mysql://user:password@host:3306/database or mariadb://..."

const decoded = (text: string): string => {
  try {
    return decodeURIComponent(text)
  } catch {
    return text
  }
}

/** Reads `--to-database <url>`; the reason on the left says what is wrong with it, never quoting the password. */
export const parseDatabaseUrl = (text: string): Either.Either<DatabaseTarget, string> => {
  if (!URL.canParse(text)) return Either.left(`--to-database needs a URL like ${EXAMPLE}`)
  const url = new URL(text)
  const scheme = SCHEMES[url.protocol]
  if (scheme === undefined) {
    return Either.left(`--to-database cannot restore into a ${url.protocol.replace(/:$/, "")}:// server: it restores into PostgreSQL (postgresql://), MySQL (mysql://) or MariaDB (mariadb://)`)
  }
  if (url.hostname === "") return Either.left(`--to-database names no host: ${EXAMPLE}`)
  if (url.username === "") return Either.left(`--to-database names no user: ${EXAMPLE}`)
  const path = decoded(url.pathname.replace(/^\//, ""))
  if (path.includes("/")) return Either.left(`--to-database names more than one database (${path}): name one, or none`)
  const port = url.port === "" ? scheme.port : Number(url.port)
  return Either.right({
    dialect: scheme.dialect,
    client: scheme.client,
    host: url.hostname.replace(/^\[(.*)\]$/, "$1"),
    port,
    user: decoded(url.username),
    password: url.password === "" ? undefined : Redacted.make(decoded(url.password)),
    database: path === "" ? undefined : path,
    sslMode: url.searchParams.get("sslmode") ?? undefined
  })
}

/** The target as messages show it: its URL without the password. */
export const describeTarget = (target: DatabaseTarget, database: string | undefined = target.database): string => {
  const scheme = target.dialect === "postgres" ? "postgresql" : target.client
  const host = target.host.includes(":") ? `[${target.host}]` : target.host
  return `${scheme}://${encodeURIComponent(target.user)}@${host}:${target.port}/${database === undefined ? "" : encodeURIComponent(database)}`
}

/** How long a client may go without writing anything while it checks (each table's checksum prints when done). */
const INACTIVITY = Duration.minutes(30)
/**
 * How long a loading client may go without taking SQL or writing anything: one statement of a
 * dump can run long without either (an index built over a large table, a foreign key checked).
 */
const LOAD_INACTIVITY = Duration.hours(3)
/** Statements that answer at once: a listing, CREATE DATABASE, the server's version. */
const SHORT = Duration.minutes(2)
/** Between SIGTERM and SIGKILL when a client is stopped. */
const KILL_GRACE_MS = 10_000

/** One run of the target's client: its arguments (never a secret), non-secret settings, and its input. */
export interface ClientRun {
  readonly args: ReadonlyArray<string>
  readonly env: Readonly<Record<string, string>>
  /** SQL on its standard input. */
  readonly input: string | Readable
  /** Its limit: on the whole run (`runtime`), or on its silence (`inactivity`), in which input it takes counts as activity. */
  readonly limit: { readonly kind: "runtime" | "inactivity"; readonly after: Duration.Duration }
}

const POSTGRES_QUIET = ["--no-psqlrc", "--quiet", "--set=ON_ERROR_STOP=1"]
const POSTGRES_ROWS = [...POSTGRES_QUIET, "--tuples-only", "--no-align"]

const postgresEnvironment = (target: DatabaseTarget, database: string): Record<string, string> => ({
  PGHOST: target.host,
  PGPORT: String(target.port),
  PGUSER: target.user,
  // The database goes in PGDATABASE: as an argument, a name holding "=" would be read as a connection string.
  PGDATABASE: database,
  PGCONNECT_TIMEOUT: "20",
  PGAPPNAME: "backup-actions restore",
  PGSSLMODE: target.sslMode ?? "prefer"
})

const mysqlConnection = (target: DatabaseTarget, database: string | undefined): ReadonlyArray<string> => [
  `--host=${target.host}`,
  `--port=${target.port}`,
  `--user=${target.user}`,
  // "localhost" would otherwise mean the local socket.
  "--protocol=TCP",
  "--connect-timeout=20",
  "--default-character-set=utf8mb4",
  ...(database === undefined ? [] : [`--database=${database}`])
]

const MYSQL_ROWS = ["--batch", "--raw", "--skip-column-names", "--unbuffered"]

const quotePg = (name: string): string => `"${name.replaceAll('"', '""')}"`
const quoteMysql = (name: string): string => `\`${name.replaceAll("`", "``")}\``
/** A PostgreSQL string literal that reads the same whatever the server's settings. */
const pgLiteral = (value: string): string => `convert_from('\\x${Buffer.from(value, "utf8").toString("hex")}'::bytea, 'UTF8')`

/** The client runs this module makes, each for one purpose. */
export const clientRuns = {
  /** Rows of a query, over a short limit. */
  query: (target: DatabaseTarget, database: string | undefined, sql: string): ClientRun =>
    target.dialect === "postgres"
      ? { args: POSTGRES_ROWS, env: postgresEnvironment(target, database ?? "postgres"), input: sql, limit: { kind: "runtime", after: SHORT } }
      : { args: [...mysqlConnection(target, database), ...MYSQL_ROWS], env: {}, input: sql, limit: { kind: "runtime", after: SHORT } },
  /** Each table's rows and checksum: it reads every row, so only silence limits it. */
  checksums: (target: DatabaseTarget, database: string, script: string): ClientRun => ({
    ...clientRuns.query(target, database, script),
    limit: { kind: "inactivity", after: INACTIVITY }
  }),
  /**
   * The dump's SQL loaded: psql stops at the first error and runs it all in one transaction (a
   * failed load leaves nothing behind); the mysql and mariadb clients stop at the first error.
   */
  load: (target: DatabaseTarget, database: string, sql: Readable): ClientRun =>
    target.dialect === "postgres"
      ? { args: [...POSTGRES_QUIET, "--single-transaction"], env: postgresEnvironment(target, database), input: sql, limit: { kind: "inactivity", after: LOAD_INACTIVITY } }
      : { args: [...mysqlConnection(target, database), "--batch"], env: {}, input: sql, limit: { kind: "inactivity", after: LOAD_INACTIVITY } },
  /** Whether the database exists (PostgreSQL: a line when it does), or creates it when it is missing (MySQL, MariaDB). */
  ensureDatabase: (target: DatabaseTarget, database: string): ClientRun =>
    target.dialect === "postgres"
      ? clientRuns.query(target, "postgres", `SELECT 1 FROM pg_catalog.pg_database WHERE datname = ${pgLiteral(database)};\n`)
      : clientRuns.query(target, undefined, `CREATE DATABASE IF NOT EXISTS ${quoteMysql(database)} CHARACTER SET utf8mb4;\n`),
  createPostgresDatabase: (target: DatabaseTarget, database: string): ClientRun => clientRuns.query(target, "postgres", `CREATE DATABASE ${quotePg(database)};\n`),
  /** PostgreSQL's FORCE ends the sessions still on it (13 and later). */
  dropDatabase: (target: DatabaseTarget, database: string): ClientRun =>
    target.dialect === "postgres"
      ? clientRuns.query(target, "postgres", `DROP DATABASE IF EXISTS ${quotePg(database)} WITH (FORCE);\n`)
      : clientRuns.query(target, undefined, `DROP DATABASE IF EXISTS ${quoteMysql(database)};\n`)
}

/** The last lines of a client's stderr on one line, the password taken out should it ever be echoed. */
export const clientReason = (stderr: string, password: Redacted.Redacted<string> | undefined): string => {
  const secret = password === undefined ? "" : Redacted.value(password)
  const text = secret === "" ? stderr : stderr.replaceAll(secret, "<redacted>")
  return text
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "")
    .slice(-5)
    .join(" | ")
}

/**
 * Runs the target's client to its end and returns its standard output. The password is put in
 * the one environment variable the client reads it from (PGPASSWORD, MYSQL_PWD), never in its
 * arguments. A client past its limit gets SIGTERM, then SIGKILL; so does one whose input fails.
 */
export const runClient = (target: DatabaseTarget, run: ClientRun): Promise<string> =>
  new Promise((resolve, reject) => {
    const passwordVariable = target.dialect === "postgres" ? "PGPASSWORD" : "MYSQL_PWD"
    const env = { ...process.env, ...run.env, ...(target.password === undefined ? {} : { [passwordVariable]: Redacted.value(target.password) }) }
    const child = spawn(target.client, [...run.args], { env, stdio: ["pipe", "pipe", "pipe"] })
    let stdout = ""
    let stderr = ""
    let failure: string | undefined
    let activeAt = Date.now()
    const startedAt = activeAt
    const active = () => (activeAt = Date.now())
    child.stdout.on("data", (data: Buffer) => {
      active()
      stdout += data.toString("utf8")
    })
    child.stderr.on("data", (data: Buffer) => {
      active()
      stderr = (stderr + data.toString("utf8")).slice(-16_384)
    })
    let killer: NodeJS.Timeout | undefined
    const stop = (why: string) => {
      if (failure !== undefined) return
      failure = why
      child.kill("SIGTERM")
      killer = setTimeout(() => child.kill("SIGKILL"), KILL_GRACE_MS)
    }
    const limitMs = Duration.toMillis(run.limit.after)
    const watch = setInterval(() => {
      const now = Date.now()
      if (run.limit.kind === "runtime" && now - startedAt > limitMs) stop(`ran longer than ${Duration.format(run.limit.after)} and was stopped`)
      if (run.limit.kind === "inactivity" && now - activeAt > limitMs) stop(`neither read SQL nor wrote anything for ${Duration.format(run.limit.after)} and was stopped`)
    }, 1000)
    child.stdin.on("error", () => undefined)
    const input = typeof run.input === "string" ? Readable.from([run.input]) : run.input
    input.on("data", active)
    input.on("error", (error) => stop(`was stopped: ${error.message}`))
    input.pipe(child.stdin)
    child.on("error", (error) => {
      clearInterval(watch)
      reject(new Error((error as NodeJS.ErrnoException).code === "ENOENT" ? `${target.client} is not installed` : `cannot run ${target.client}: ${error.message}`))
    })
    child.on("close", (code, signal) => {
      clearInterval(watch)
      if (killer !== undefined) clearTimeout(killer)
      if (failure === undefined && code === 0) return resolve(stdout)
      const said = clientReason(stderr, target.password)
      const how = failure ?? (signal !== null ? `was killed by ${signal}` : `exited with ${code}`)
      reject(new Error(`${target.client} ${how}${said === "" ? "" : `: ${said}`}`))
    })
  })

const messageOf = (error: unknown): string => (error instanceof Error ? error.message : String(error))

const onServer = (target: DatabaseTarget, database: string | undefined, run: ClientRun, what: string) =>
  Effect.tryPromise({
    try: () => runClient(target, run),
    catch: (error) => new OperationFailed({ message: `${what} on ${describeTarget(target, database)}: ${messageOf(error)}` })
  })

/** The tables of a database on the target with their rows and checksums, computed as at dump time. */
export const checksumsOn = (target: DatabaseTarget, database: string) =>
  Effect.gen(function* () {
    const listed = yield* onServer(target, database, clientRuns.query(target, database, tableListQuery(target.dialect)), "listing the tables")
    const tables = yield* Effect.try({
      try: () => parseTableList(target.dialect, listed),
      catch: (error) => new OperationFailed({ message: `the table list of ${describeTarget(target, database)} could not be read: ${messageOf(error)}` })
    })
    if (tables.length === 0) return { tables, checksums: [] as ReadonlyArray<TableChecksum> }
    const output = yield* onServer(target, database, clientRuns.checksums(target, database, tableChecksumScript(target.dialect, tables)), "computing the table checksums")
    const checksums = yield* Effect.try({
      try: () => parseTableChecksums(output),
      catch: (error) => new OperationFailed({ message: `the table checksums of ${describeTarget(target, database)} could not be read: ${messageOf(error)}` })
    })
    return { tables, checksums }
  })

/** The server's flavour, for a MySQL-family target: a MariaDB dump goes into MariaDB, a MySQL dump into MySQL. */
const serverEngine = (target: DatabaseTarget) =>
  target.dialect === "postgres"
    ? Effect.succeed("postgres")
    : Effect.map(onServer(target, undefined, clientRuns.query(target, undefined, "SELECT VERSION();\n"), "asking the server's version"), (version) =>
        /mariadb/i.test(version) ? "mariadb" : "mysql"
      )

/** Reads the manifest whole: a dump manifest has a line per database. */
const readManifest = (manifest: S3Location) =>
  Effect.gen(function* () {
    const s3 = yield* S3
    const text = yield* awsCall("s3:GetObject", async (abortSignal) => {
      const object = await s3.send(new GetObjectCommand({ Bucket: manifest.bucket, Key: manifest.key }), { abortSignal })
      return object.Body === undefined ? "" : object.Body.transformToString("utf8")
    }).pipe(
      Effect.catchIf(
        (error) => error.kind === "not-found",
        (error) => new OperationFailed({ message: `the manifest ${s3Url(manifest)} does not exist (${error.code}); a dump is restored with the manifest.ndjson beside it` })
      )
    )
    const first = text.slice(0, Math.max(0, text.indexOf("\n")) || text.length)
    const kind = Either.getOrUndefined(Either.try(() => (JSON.parse(first) as { readonly kind?: unknown }).kind))
    if (kind !== "backup-actions/dump-manifest") {
      const hint = kind === "backup-actions/file-manifest" ? ": it is a tar, restore it with --to <directory>" : kind === "backup-actions/raw-image-manifest" ? ": it is a disk image, restore it with --to-snapshot" : ""
      return yield* new UsageError({ message: `${s3Url(manifest)} does not describe a DB dump${hint}`, command: "restore" })
    }
    const parsed = parseDumpManifest(text)
    if (Either.isLeft(parsed)) return yield* new OperationFailed({ message: `${s3Url(manifest)}: ${parsed.left}` })
    return parsed.right
  })

/** One database to restore: its dump, and the database on the target it goes into. */
export interface Restoration {
  readonly dump: DumpManifestLine
  readonly into: string
}

/**
 * Which dumps go where. A `.sql.*` archive is that database's dump alone; the manifest is all of
 * them. One dump goes into the database the URL names, else into one of its own name; several
 * go each into a database of its own name, so the URL must not name one.
 */
export const plan = (location: S3Location, manifest: DumpManifest, target: DatabaseTarget): Either.Either<ReadonlyArray<Restoration>, UsageError | OperationFailed> => {
  const whole = location.key.endsWith("manifest.ndjson")
  const dumps = whole ? manifest.databases : manifest.databases.filter((line) => line.archive === location.key)
  if (dumps.length === 0) {
    return Either.left(
      whole
        ? new OperationFailed({ message: `${s3Url(location)} lists no database` })
        : new OperationFailed({ message: `the manifest beside ${s3Url(location)} lists no dump with that key (it lists ${manifest.databases.map((line) => line.archive).join(", ")})` })
    )
  }
  if (dumps.length > 1 && target.database !== undefined) {
    return Either.left(
      new UsageError({
        message: `${s3Url(location)} holds ${dumps.length} databases (${dumps.map((line) => line.database).join(", ")}): give a URL without a database to restore each under its own name, or restore one database's .sql archive`,
        command: "restore"
      })
    )
  }
  return Either.right(dumps.map((dump) => ({ dump, into: target.database ?? dump.database })))
}

/**
 * The SQL on its way to the client, hashed. Its end reaches the client only when it is the
 * SQL the dump tool wrote, byte for byte (its size and SHA-256 as the manifest records them);
 * otherwise the stream fails, the client is stopped before it sees the end, and PostgreSQL's
 * transaction is never committed. A decompressor that stopped early is caught the same way.
 */
export const verifiedSql = (expected: { readonly sqlBytes: number; readonly sqlSha256: string }) => {
  const hash = createHash("sha256")
  let bytes = 0
  return new Transform({
    transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback) {
      hash.update(chunk)
      bytes += chunk.length
      done(null, chunk)
    },
    flush(done: TransformCallback) {
      const digest = hash.digest("hex")
      done(
        bytes === expected.sqlBytes && digest === expected.sqlSha256
          ? null
          : new Error(`the SQL read (${bytes} bytes, SHA-256 ${digest}) is not what the dump tool wrote (${expected.sqlBytes} bytes, SHA-256 ${expected.sqlSha256}); its end was not loaded`)
      )
    }
  })
}

/** Loads one dump into its database and compares its tables with the manifest's; returns the problems and the tables found. */
const restoreOne = (bucket: string, compression: "zstd" | "gzip", target: DatabaseTarget, restoration: Restoration) =>
  Effect.gen(function* () {
    const progress = yield* Progress
    const { dump, into } = restoration
    const where = describeTarget(target, into)
    const exists = yield* onServer(target, into, clientRuns.ensureDatabase(target, into), "looking for the database")
    if (target.dialect === "postgres" && exists.trim() === "") yield* onServer(target, into, clientRuns.createPostgresDatabase(target, into), "creating the database")
    const before = yield* onServer(target, into, clientRuns.query(target, into, tableListQuery(target.dialect)), "listing the tables")
    if (before.trim() !== "") {
      return yield* new UsageError({ message: `${where} already holds tables: restore into a new or empty database`, command: "restore" })
    }
    const location = { bucket, key: dump.archive }
    const archive = yield* describeArchiveObject(location)
    const meter = yield* progress.meter(`restore ${dump.database} into ${into}`, archive.size)
    const checksum = new CompositeChecksum(archive.partSizes)
    const stream = yield* openArchiveStream(archive, checksum, meter.update)
    const read = yield* Effect.tryPromise({
      try: () =>
        readThrough(stream, compression, (content) => {
          const sql = verifiedSql(dump)
          content.on("error", (error) => sql.destroy(error))
          return runClient(target, clientRuns.load(target, into, content.pipe(sql))).then(() => undefined)
        }),
      catch: (error) => new OperationFailed({ message: `cannot read ${s3Url(location)}: ${messageOf(error)}` })
    })
    meter.finish()
    const problems: Array<string> = []
    if (read.failure !== undefined) {
      problems.push(`the load stopped: ${read.failure}${target.dialect === "postgres" ? " (it ran in one transaction, which was not committed)" : ""}`)
    }
    if (checksum.bytes !== archive.size) problems.push(`only ${checksum.bytes} of the archive's ${archive.size} bytes could be read`)
    else if (!sameComposite(checksum.digest(), dump.checksum.value)) problems.push(`the archive's composite SHA-256 is ${checksum.digest()}; the manifest says ${dump.checksum.value}`)
    if (problems.length > 0 || dump.tables === undefined) return { restoration, problems, found: [] as ReadonlyArray<TableChecksum> }
    const { checksums } = yield* checksumsOn(target, into)
    problems.push(...compareTableChecksums(dump.tables, checksums))
    return { restoration, problems, found: checksums }
  })

/** The per-table summary printed after a restore. */
export const summaryLines = (found: ReadonlyArray<TableChecksum>): ReadonlyArray<string> => {
  const width = Math.max(0, ...found.map((table) => table.table.length))
  return found.map((table) => `  ${table.table.padEnd(width)}  ${String(table.rows).padStart(10)} rows  ${table.checksum}`)
}

/**
 * `restore <dump> --to-database <url>`: one database's dump (its `.sql.zst` archive) or all of
 * an instance's (its manifest), each streamed from S3 through the decompressor into the
 * engine's client, then each table's rows and checksum computed on the target as they were at
 * dump time and compared: exit 1 naming every table that differs.
 */
export const restoreDatabaseCommand = (location: S3Location, url: string) =>
  Effect.gen(function* () {
    const target = yield* Either.mapLeft(parseDatabaseUrl(url), (message) => new UsageError({ message, command: "restore" }))
    const manifestLocation = location.key.endsWith("manifest.ndjson") ? location : manifestBeside(location)
    const manifest = yield* readManifest(manifestLocation)
    const engine = manifest.header.engine
    if (checksumDialectOf(engine) !== target.dialect) {
      return yield* new UsageError({
        message: `${s3Url(location)} is a ${engine} dump; it restores into ${checksumDialectOf(engine) === "postgres" ? "PostgreSQL (postgresql://)" : "MySQL or MariaDB (mysql://, mariadb://)"}, not ${describeTarget(target)}`,
        command: "restore"
      })
    }
    const restorations = yield* plan(location, manifest, target)
    const server = yield* serverEngine(target)
    if (server !== engine) {
      return yield* new UsageError({ message: `${s3Url(location)} is a ${engine} dump and ${describeTarget(target)} is a ${server} server: restore it into ${engine}`, command: "restore" })
    }
    const problems: Array<string> = []
    for (const restoration of restorations) {
      const result = yield* restoreOne(location.bucket, manifest.header.compression, target, restoration)
      const where = describeTarget(target, restoration.into)
      problems.push(...result.problems.map((problem) => `${restoration.dump.database} into ${restoration.into}: ${problem}`))
      if (result.problems.length > 0) continue
      const tables = restoration.dump.tables
      if (tables === undefined) {
        yield* Console.log(`restored ${restoration.dump.database} into ${where}; its manifest records no table checksums (a dump written before they were): the SQL matches the dump, the tables were not compared`)
        continue
      }
      const rows = result.found.reduce((total, table) => total + table.rows, 0)
      yield* Console.log(`restored ${restoration.dump.database} into ${where}: ${result.found.length} table(s), ${rows} rows; every table's row count and checksum match the dump's`)
      for (const line of summaryLines(result.found)) yield* Console.log(line)
    }
    if (problems.length > 0) {
      return yield* new CheckFailed({
        summary: `the restore of ${s3Url(location)} into ${describeTarget(target)} does not match the dump; what is there cannot be trusted:`,
        problems
      })
    }
  })

/** What a restore into scratch databases made and found. */
export interface ScratchRestore {
  readonly databases: number
  readonly rows: number
  /** The SQL loaded, in bytes. */
  readonly sqlBytes: number
}

/**
 * A dump restored into new databases on a scratch server, for a drill; prints nothing. The
 * server is the first of `urls` (which name no database) that speaks the dump's engine; each
 * dumped database goes into `<scratchPrefix>_<n>`, announced through `created` before anything
 * is loaded so that the caller drops it on every outcome. Fails when the SQL or a table's rows
 * or checksum differ from what the dump recorded, or when the manifest recorded no table checksums.
 */
export const restoreDumpToScratch = (
  location: S3Location,
  urls: ReadonlyArray<string>,
  scratchPrefix: string,
  created: (database: string, drop: Effect.Effect<void, OperationFailed>) => void
) =>
  Effect.gen(function* () {
    const manifestLocation = location.key.endsWith("manifest.ndjson") ? location : manifestBeside(location)
    const manifest = yield* readManifest(manifestLocation)
    const engine = manifest.header.engine
    const targets = yield* Effect.forEach(urls, (url) => Either.mapLeft(parseDatabaseUrl(url), (message) => new UsageError({ message: message.replace("--to-database", "--scratch-database"), command: "drill" })))
    const named = targets.find((target) => target.database !== undefined)
    if (named !== undefined) {
      return yield* new UsageError({ message: `--scratch-database ${describeTarget(named)} names a database: a drill makes its own on the server, so name none`, command: "drill" })
    }
    const target = targets.find((candidate) => candidate.dialect === checksumDialectOf(engine))
    if (target === undefined) {
      return yield* new OperationFailed({
        message: `${s3Url(location)} is a ${engine} dump and no --scratch-database is a ${checksumDialectOf(engine) === "postgres" ? "PostgreSQL" : "MySQL or MariaDB"} server to drill it on`
      })
    }
    const server = yield* serverEngine(target)
    if (server !== engine) return yield* new OperationFailed({ message: `${s3Url(location)} is a ${engine} dump and ${describeTarget(target)} is a ${server} server` })
    const restorations = (yield* plan(location, manifest, target)).map((restoration, index) => ({ ...restoration, into: `${scratchPrefix}_${index + 1}` }))
    const problems: Array<string> = []
    let rows = 0
    for (const restoration of restorations) {
      created(restoration.into, Effect.asVoid(onServer(target, restoration.into, clientRuns.dropDatabase(target, restoration.into), "dropping the drill's database")))
      const result = yield* restoreOne(location.bucket, manifest.header.compression, target, restoration)
      problems.push(...result.problems.map((problem) => `${restoration.dump.database}: ${problem}`))
      if (result.problems.length === 0 && restoration.dump.tables === undefined) {
        problems.push(`${restoration.dump.database}: the manifest records no table checksums (a dump written before they were), so the restored tables cannot be checked`)
      }
      rows += result.found.reduce((total, table) => total + table.rows, 0)
    }
    if (problems.length > 0) {
      return yield* new CheckFailed({ summary: `the restore of ${s3Url(location)} into ${describeTarget(target)} does not match the dump:`, problems })
    }
    const restored: ScratchRestore = { databases: restorations.length, rows, sqlBytes: restorations.reduce((total, restoration) => total + restoration.dump.sqlBytes, 0) }
    return restored
  })
