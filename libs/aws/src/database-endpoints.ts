import { Context, Effect, Layer, Schema } from "effect"
import type { RestoredDatabase } from "@backup-actions/contracts"

/** Where a database client connects. */
export interface DatabaseEndpoint {
  readonly host: string
  readonly port: number
}

/** No endpoint can be given for a restored database; the reason says why. */
export class DatabaseEndpointUnavailable extends Schema.TaggedError<DatabaseEndpointUnavailable>()("DatabaseEndpointUnavailable", {
  instanceId: Schema.String,
  engine: Schema.String,
  reason: Schema.String
}) {}

export interface DatabaseEndpointsShape {
  /** Where to connect to a restored DB instance's engine. */
  readonly endpointOf: (database: Pick<RestoredDatabase, "instanceId" | "engine" | "address" | "port">) => Effect.Effect<DatabaseEndpoint, DatabaseEndpointUnavailable>
}

/** How a restored DB instance is reached. */
export class DatabaseEndpoints extends Context.Tag("backup-actions/DatabaseEndpoints")<DatabaseEndpoints, DatabaseEndpointsShape>() {
  /** The instance's own endpoint, as RDS reported it when the instance was restored. */
  static readonly Live: Layer.Layer<DatabaseEndpoints> = Layer.succeed(DatabaseEndpoints, {
    endpointOf: (database) => Effect.succeed({ host: database.address, port: database.port })
  })
}
