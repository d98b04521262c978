import { Readable } from "node:stream"
import { Effect, Either, Redacted, Schema } from "effect"
import { tableChecksumScript, tableListQuery, type ChecksumDialect, type TableToCheck } from "@backup-actions/archive"
import {
  SHORT_COMMAND,
  lastLines,
  runToCompletion,
  type RunningTool,
  type SpawnRequest,
  type ToolExit,
  type ToolLimits,
  type ToolTimedOut
} from "./exec"

/** Where and as whom a dump tool connects. The password stays redacted until a process is spawned. */
export interface DbConnection {
  readonly host: string
  readonly port: number
  readonly user: string
  readonly password: Redacted.Redacted<string>
}

/**
 * A command line of a database tool. The password is never an argument (arguments are
 * visible to every user of the machine in /proc and `ps`): it is handed over in the one
 * environment variable the tool reads it from, and only when the process is spawned.
 */
export interface ToolCommand {
  readonly command: string
  readonly args: ReadonlyArray<string>
  /** Connection settings that are not secret. */
  readonly env: Readonly<Record<string, string>>
  readonly passwordVariable: "PGPASSWORD" | "MYSQL_PWD"
  readonly password: Redacted.Redacted<string>
  /** SQL for the tool's standard input, when it reads a script. */
  readonly input?: string
}

/** A database of the instance, with its size on disk (the dump's size is estimated from it). */
export interface DatabaseInfo {
  readonly name: string
  readonly sizeBytes: number
}

/** How one engine lists its databases and dumps one of them. */
export interface DumpTool {
  readonly engine: string
  /** The dump tool's name, for messages. */
  readonly dumpCommand: string
  readonly passwordVariable: ToolCommand["passwordVariable"]
  readonly listDatabases: (connection: DbConnection) => ToolCommand
  readonly parseDatabaseList: (stdout: string) => ReadonlyArray<DatabaseInfo>
  readonly dumpDatabase: (connection: DbConnection, database: string) => ToolCommand
  /** How the server computes the tables' row counts and checksums (see @backup-actions/archive's dump-manifest.ts). */
  readonly checksumDialect: ChecksumDialect
  /** Lists the tables of a database whose data the dump holds (`tableListQuery`). */
  readonly listTables: (connection: DbConnection, database: string) => ToolCommand
  /** Prints each table's row count and checksum, one JSON line per table (`tableChecksumScript`). */
  readonly checksumTables: (connection: DbConnection, database: string, tables: ReadonlyArray<TableToCheck>) => ToolCommand
}

export class UnsupportedEngine extends Schema.TaggedError<UnsupportedEngine>()("UnsupportedEngine", {
  engine: Schema.String
}) {}

export class ToolFailed extends Schema.TaggedError<ToolFailed>()("ToolFailed", {
  tool: Schema.String,
  exitCode: Schema.NullOr(Schema.Number),
  /** The last lines of its stderr, with the password taken out should the tool ever echo it. */
  reason: Schema.String,
  /** The server refused the credentials: right after a master-password reset, it may not be in effect yet. */
  authenticationFailed: Schema.Boolean
}) {}

/** Databases that belong to the service rather than to the user. */
const POSTGRES_SYSTEM_DATABASES = ["rdsadmin"]
const MYSQL_SYSTEM_DATABASES = ["information_schema", "performance_schema", "mysql", "sys"]

const postgresEnvironment = (connection: DbConnection, database: string): Record<string, string> => ({
  PGHOST: connection.host,
  PGPORT: String(connection.port),
  PGUSER: connection.user,
  PGDATABASE: database,
  PGCONNECT_TIMEOUT: "20",
  PGAPPNAME: "backup-actions",
  // TLS when the server offers it (RDS does); the local server does not.
  PGSSLMODE: "prefer"
})

const sqlList = (names: ReadonlyArray<string>): string => names.map((name) => `'${name}'`).join(", ")

/** psql printing bare rows, stopping at the first error. */
const POSTGRES_QUERY_ARGS = ["--no-password", "--no-psqlrc", "--quiet", "--tuples-only", "--no-align", "--set=ON_ERROR_STOP=1"]

const postgres: DumpTool = {
  engine: "postgres",
  dumpCommand: "pg_dump",
  passwordVariable: "PGPASSWORD",
  listDatabases: (connection) => ({
    command: "psql",
    args: [
      "--no-password",
      "--no-psqlrc",
      "--quiet",
      "--tuples-only",
      "--no-align",
      "--field-separator=\t",
      "--record-separator-zero",
      "--command",
      "SELECT datname, CASE WHEN has_database_privilege(datname, 'CONNECT') THEN pg_database_size(datname) ELSE 0 END " +
        `FROM pg_database WHERE datallowconn AND NOT datistemplate AND datname NOT IN (${sqlList(POSTGRES_SYSTEM_DATABASES)}) ORDER BY datname`
    ],
    // Every RDS for PostgreSQL instance has the postgres database to connect to.
    env: postgresEnvironment(connection, "postgres"),
    passwordVariable: "PGPASSWORD",
    password: connection.password
  }),
  parseDatabaseList: (stdout) => parseRows(stdout.split("\0")),
  // The database goes in PGDATABASE: as an argument, a name holding "=" would be read as a connection string.
  dumpDatabase: (connection, database) => ({
    command: "pg_dump",
    args: ["--format=plain", "--no-password", "--encoding=UTF8", "--quote-all-identifiers"],
    env: postgresEnvironment(connection, database),
    passwordVariable: "PGPASSWORD",
    password: connection.password
  }),
  checksumDialect: "postgres",
  listTables: (connection, database) => ({
    command: "psql",
    args: [...POSTGRES_QUERY_ARGS, "--command", tableListQuery("postgres")],
    env: postgresEnvironment(connection, database),
    passwordVariable: "PGPASSWORD",
    password: connection.password
  }),
  checksumTables: (connection, database, tables) => ({
    command: "psql",
    args: POSTGRES_QUERY_ARGS,
    env: postgresEnvironment(connection, database),
    passwordVariable: "PGPASSWORD",
    password: connection.password,
    input: tableChecksumScript("postgres", tables)
  })
}

const mysqlFamily = (engine: string, client: string, dump: string): DumpTool => {
  const connectionArgs = (connection: DbConnection) => [
    `--host=${connection.host}`,
    `--port=${connection.port}`,
    `--user=${connection.user}`,
    // "localhost" would otherwise mean the local socket.
    "--protocol=TCP"
  ]
  /** The client printing bare rows, unescaped (the rows are JSON), each query's as soon as it is done. */
  const queryArgs = (connection: DbConnection, database: string) => [
    ...connectionArgs(connection),
    "--connect-timeout=20",
    "--default-character-set=utf8mb4",
    "--batch",
    "--raw",
    "--skip-column-names",
    "--unbuffered",
    `--database=${database}`
  ]
  return {
    engine,
    dumpCommand: dump,
    passwordVariable: "MYSQL_PWD",
    listDatabases: (connection) => ({
      command: client,
      args: [
        ...connectionArgs(connection),
        // The listing runs first, so an unreachable server fails here, in time. The dump tools
        // (mysqldump, mariadb-dump) refuse this option.
        "--connect-timeout=20",
        "--batch",
        "--skip-column-names",
        "--raw",
        "--execute",
        "SELECT s.schema_name, COALESCE(SUM(t.data_length + t.index_length), 0) FROM information_schema.schemata s " +
          "LEFT JOIN information_schema.tables t ON t.table_schema = s.schema_name " +
          `WHERE s.schema_name NOT IN (${sqlList(MYSQL_SYSTEM_DATABASES)}) GROUP BY s.schema_name ORDER BY s.schema_name`
      ],
      env: {},
      passwordVariable: "MYSQL_PWD",
      password: connection.password
    }),
    parseDatabaseList: (stdout) => parseRows(stdout.split("\n")),
    dumpDatabase: (connection, database) => ({
      command: dump,
      args: [
        ...connectionArgs(connection),
        "--single-transaction",
        "--quick",
        "--routines",
        "--triggers",
        "--events",
        "--hex-blob",
        "--no-tablespaces",
        "--default-character-set=utf8mb4",
        database
      ],
      env: {},
      passwordVariable: "MYSQL_PWD",
      password: connection.password
    }),
    checksumDialect: "mysql",
    listTables: (connection, database) => ({
      command: client,
      args: [...queryArgs(connection, database), "--execute", tableListQuery("mysql")],
      env: {},
      passwordVariable: "MYSQL_PWD",
      password: connection.password
    }),
    checksumTables: (connection, database, tables) => ({
      command: client,
      args: queryArgs(connection, database),
      env: {},
      passwordVariable: "MYSQL_PWD",
      password: connection.password,
      input: tableChecksumScript("mysql", tables)
    })
  }
}

/** Rows of "name<TAB>size", one per database. */
const parseRows = (rows: ReadonlyArray<string>): ReadonlyArray<DatabaseInfo> =>
  rows
    .map((row) => row.replace(/\n$/, ""))
    .filter((row) => row.trim() !== "")
    .map((row) => {
      const tab = row.lastIndexOf("\t")
      const name = tab < 0 ? row : row.slice(0, tab)
      const size = tab < 0 ? 0 : Number(row.slice(tab + 1))
      return { name, sizeBytes: Number.isFinite(size) ? size : 0 }
    })

const TOOLS: ReadonlyArray<DumpTool> = [postgres, mysqlFamily("mysql", "mysql", "mysqldump"), mysqlFamily("mariadb", "mariadb", "mariadb-dump")]

/** The engine's own dump tool: pg_dump for PostgreSQL, mysqldump for MySQL, mariadb-dump for MariaDB. */
export const dumpToolFor = (engine: string): Either.Either<DumpTool, UnsupportedEngine> => {
  const tool = TOOLS.find((candidate) => candidate.engine === engine)
  return tool === undefined ? Either.left(new UnsupportedEngine({ engine })) : Either.right(tool)
}

/** Asks the dump tool for its version, which the manifest records. */
export const versionCommand = (tool: DumpTool): ToolCommand => ({
  command: tool.dumpCommand,
  args: ["--version"],
  env: {},
  passwordVariable: tool.passwordVariable,
  password: Redacted.make("")
})

/** The engines the streamer can dump. */
export const DUMPABLE_ENGINES: ReadonlyArray<string> = TOOLS.map((tool) => tool.engine)

/** The environment a tool runs with: the service's own, the connection settings, and the password. */
export const spawnEnvironment = (command: ToolCommand): NodeJS.ProcessEnv => {
  const password = Redacted.value(command.password)
  return { ...process.env, ...command.env, ...(password === "" ? {} : { [command.passwordVariable]: password }) }
}

const AUTHENTICATION_FAILURE = /password authentication failed|authentication failed for user|Access denied for user/i

/** The last lines of a tool's stderr, as a one-line reason, never with the password in it. */
export const stderrReason = (stderr: string, password: Redacted.Redacted<string>, lines = 5): string => lastLines(stderr, [password], lines)

/** The failure of a tool that exited badly, was killed or could not start. */
export const toolFailure = (command: ToolCommand, exit: ToolExit, stderr: string): ToolFailed => {
  const startError = exit.startError
  const notFound = startError !== undefined && "code" in startError && startError.code === "ENOENT"
  const lines = stderrReason(stderr, command.password)
  const reason = notFound
    ? `${command.command} is not installed`
    : startError !== undefined
      ? `${command.command} could not start: ${startError.message}`
      : exit.signal !== null
        ? [`killed by ${exit.signal}`, lines].filter((part) => part !== "").join("; ")
        : lines || "no error output"
  return new ToolFailed({ tool: command.command, exitCode: exit.code, reason, authenticationFailed: AUTHENTICATION_FAILURE.test(stderr) })
}

/** A database tool as the spawn helper starts it: the password only in its environment, and taken out of its stderr. */
export const toolRequest = (command: ToolCommand, limits: ToolLimits): SpawnRequest => ({
  command: command.command,
  args: command.args,
  env: spawnEnvironment(command),
  secrets: [command.password],
  limits,
  ...(command.input === undefined ? {} : { stdin: Readable.from([command.input]) })
})

/** Succeeds when the tool exited 0; otherwise fails with ToolFailed (or ToolTimedOut). */
export const toolExitedCleanly = (command: ToolCommand, tool: RunningTool): Effect.Effect<void, ToolFailed | ToolTimedOut> =>
  Effect.flatMap(tool.exit, (exit) => (exit.code === 0 ? Effect.void : Effect.fail(toolFailure(command, exit, tool.stderr()))))

/** Runs a tool to completion (within SHORT_COMMAND_TIMEOUT) and returns its standard output. */
export const runTool = (command: ToolCommand): Effect.Effect<string, ToolFailed | ToolTimedOut> =>
  runToCompletion(toolRequest(command, SHORT_COMMAND), (tool) => toolExitedCleanly(command, tool))
