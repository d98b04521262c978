import { Effect, Layer } from "effect"
import { Publisher, PublishFailed, type PublisherShape } from "./publisher"

/** An event as the in-memory publisher kept it. */
export interface PublishedEvent {
  readonly detailType: string
  readonly detail: unknown
  readonly resources: ReadonlyArray<string>
}

/**
 * A publisher that keeps what it is asked to publish, after validating it against the
 * contract as the live one does. `refuseNext(n)` makes the next n calls fail as a refused
 * PutEvents entry would, for tests of what survives a failed publish.
 */
export const makeMemoryPublisher = () => {
  const published: Array<PublishedEvent> = []
  let refusals = 0
  const shape: PublisherShape = {
    publish: (contract, detail, resources = []) =>
      Effect.gen(function* () {
        const encoded = yield* contract.encodeDetail(detail)
        if (refusals > 0) {
          refusals -= 1
          return yield* new PublishFailed({ detailType: contract.detailType, errorCode: "InternalFailure", errorMessage: "refused by the test" })
        }
        published.push({ detailType: contract.detailType, detail: encoded, resources: [...resources] })
      })
  }
  return {
    published,
    refuseNext: (count: number) => void (refusals = count),
    publisher: shape,
    layer: Layer.succeed(Publisher, shape)
  }
}
