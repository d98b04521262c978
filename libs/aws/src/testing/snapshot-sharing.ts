import { Effect, Layer } from "effect"
import { SourceSharing, type ShareRequest, type SourceSharingShape } from "../snapshot-sharing"

/**
 * Sharing in memory, for tests of a replica's steps without EC2: `requests` is every share asked
 * for, in order, and `shared` the snapshot ids shared and not yet taken back (when the share's
 * scope closes). The destination copies the source snapshot itself.
 */
export const makeMemorySourceSharing = () => {
  const requests: Array<ShareRequest> = []
  const shared = new Set<string>()
  const shape: SourceSharingShape = {
    share: (request) =>
      Effect.acquireRelease(
        Effect.sync(() => {
          requests.push(request)
          shared.add(request.snapshotId)
          return request.snapshotId
        }),
        () => Effect.sync(() => shared.delete(request.snapshotId))
      )
  }
  return { requests, shared, sourceSharing: shape, layer: Layer.succeed(SourceSharing, shape) }
}

/** In-memory sharing as a layer. */
export const MemorySourceSharing = Layer.sync(SourceSharing, () => makeMemorySourceSharing().sourceSharing)
