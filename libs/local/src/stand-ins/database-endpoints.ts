import { Config, Effect, Either, Layer, Option } from "effect"
import { DatabaseEndpointUnavailable, DatabaseEndpoints, type DatabaseEndpoint } from "@backup-actions/aws"

/**
 * The setting that names the local database servers, which the local runtime passes to its
 * service processes: `host:port` for every engine, or `engine=host:port` pairs separated by
 * commas (e.g. `postgres=127.0.0.1:5433,mariadb=127.0.0.1:3307`).
 */
export const LOCAL_DATABASE_SERVERS = "BACKUP_ACTIONS_DB_ENDPOINT_OVERRIDE"

/** The setting's value for the servers given: an `engine=host:port` pair for each, nothing when there are none. */
export const localDatabaseServersEnvironment = (servers: { readonly postgres?: string | undefined; readonly mariadb?: string | undefined }): Record<string, string> => {
  const pairs = [...(servers.postgres === undefined ? [] : [`postgres=${servers.postgres}`]), ...(servers.mariadb === undefined ? [] : [`mariadb=${servers.mariadb}`])]
  return pairs.length === 0 ? {} : { [LOCAL_DATABASE_SERVERS]: pairs.join(",") }
}

/** `host:port` (or `[v6-address]:port`); anything else is undefined. */
export const parseEndpoint = (value: string): DatabaseEndpoint | undefined => {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(value.trim())
  const host = match?.[1] ?? match?.[2]
  const port = Number(match?.[3])
  return host === undefined || !Number.isInteger(port) || port < 1 || port > 65_535 ? undefined : { host, port }
}

/** An engine name as RDS spells it (`postgres`, `mariadb`, `aurora-mysql`). */
const ENGINE_NAME = /^[a-z][a-z0-9-]*$/

/**
 * The server the setting names for one engine, or why there is none. `host:port` stands in for
 * every engine; `engine=host:port` pairs let one local stack run a server per engine. A value
 * that is neither, or names an engine twice, is refused as a whole, so a typo never sends a dump
 * to the wrong server.
 */
export const localServerFor = (value: string, engine: string): Either.Either<DatabaseEndpoint, string> => {
  const invalid = Either.left(`${LOCAL_DATABASE_SERVERS} is neither host:port nor engine=host:port pairs separated by commas: "${value}"`)
  if (!value.includes("=")) {
    const endpoint = parseEndpoint(value)
    return endpoint === undefined ? invalid : Either.right(endpoint)
  }
  const endpoints = new Map<string, DatabaseEndpoint>()
  for (const entry of value.split(",").map((part) => part.trim())) {
    const separator = entry.indexOf("=")
    const name = separator < 0 ? "" : entry.slice(0, separator).trim()
    const endpoint = parseEndpoint(entry.slice(separator + 1))
    if (!ENGINE_NAME.test(name) || endpoints.has(name) || endpoint === undefined) return invalid
    endpoints.set(name, endpoint)
  }
  const chosen = endpoints.get(engine)
  return chosen === undefined ? Either.left(`${LOCAL_DATABASE_SERVERS} names no endpoint for engine ${engine}: "${value}"`) : Either.right(chosen)
}

/**
 * DatabaseEndpoints on the emulator, whose DB instances have no engine behind them: a restored
 * instance is reached at the local server of its engine, as LOCAL_DATABASE_SERVERS names it
 * (read when asked, so that a test can set it). Without the setting, the address the instance
 * was given, as on AWS: a test whose dump tools are stubs needs no server.
 */
export const LocalDatabaseEndpoints: Layer.Layer<DatabaseEndpoints> = Layer.succeed(DatabaseEndpoints, {
  endpointOf: (database) =>
    Effect.gen(function* () {
      const value = yield* Config.option(Config.string(LOCAL_DATABASE_SERVERS)).pipe(Effect.orDie)
      if (Option.isNone(value)) return { host: database.address, port: database.port }
      const chosen = localServerFor(value.value, database.engine)
      return yield* Either.mapLeft(chosen, (reason) => new DatabaseEndpointUnavailable({ instanceId: database.instanceId, engine: database.engine, reason }))
    })
})
