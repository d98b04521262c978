import { Effect, Layer } from "effect"
import { DatabaseEndpoints, DatabaseEndpointUnavailable, type DatabaseEndpoint, type DatabaseEndpointsShape } from "../database-endpoints"

/**
 * Database endpoints in memory, for tests of what a handler does with a restored DB instance
 * without connecting to one: `endpoints` says where each instance is reached, and any other
 * instance has no endpoint. `requests` is every instance asked about, in order.
 */
export const makeMemoryDatabaseEndpoints = (endpoints: Readonly<Record<string, DatabaseEndpoint>> = {}) => {
  const requests: Array<string> = []
  const shape: DatabaseEndpointsShape = {
    endpointOf: (database) =>
      Effect.suspend(() => {
        requests.push(database.instanceId)
        const endpoint = endpoints[database.instanceId]
        return endpoint === undefined
          ? Effect.fail(new DatabaseEndpointUnavailable({ instanceId: database.instanceId, engine: database.engine, reason: "no endpoint for this instance in the test" }))
          : Effect.succeed(endpoint)
      })
  }
  return { requests, databaseEndpoints: shape, layer: Layer.succeed(DatabaseEndpoints, shape) }
}

/** In-memory database endpoints as a layer, with no endpoint for any instance. */
export const MemoryDatabaseEndpoints = Layer.sync(DatabaseEndpoints, () => makeMemoryDatabaseEndpoints().databaseEndpoints)
