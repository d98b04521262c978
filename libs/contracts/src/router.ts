import { Effect } from "effect"
import {
  type BusEvent,
  type Contract,
  type DecodeFailure,
  type EventPattern,
  EventDecodeError,
  UnknownEventType,
  type UnsupportedSchemaVersion
} from "./contract"

/**
 * A service's interest in one event type: where it comes from, the pattern for its rule
 * (optionally narrowed on detail fields), and how a parsed body becomes the handler run.
 */
export interface Subscription<R, E> {
  readonly source: string
  readonly detailType: string
  readonly pattern: EventPattern
  readonly dispatch: (
    parsed: unknown
  ) => Effect.Effect<Effect.Effect<void, E, R>, EventDecodeError | UnsupportedSchemaVersion>
}

/** Pairs a contract with the handler typed from it. */
export const subscribe = <S extends string, D extends string, T, R, E>(
  contract: Contract<S, D, T>,
  handle: (event: BusEvent<S, D, T>) => Effect.Effect<void, E, R>,
  detailFilter?: Readonly<Record<string, ReadonlyArray<unknown>>>
): Subscription<R, E> => ({
  source: contract.source,
  detailType: contract.detailType,
  pattern: contract.pattern(detailFilter),
  dispatch: (parsed) => Effect.map(contract.decode(parsed), handle)
})

const parseJson = (body: string): Effect.Effect<unknown, EventDecodeError> =>
  Effect.try({
    try: (): unknown => JSON.parse(body),
    catch: (error) => new EventDecodeError({ reason: `body is not JSON: ${String(error)}` })
  })

const field = (value: unknown, name: string): string | undefined => {
  if (typeof value !== "object" || value === null) return undefined
  const entry: unknown = Reflect.get(value, name)
  return typeof entry === "string" ? entry : undefined
}

/**
 * Turns an SQS body into the handler run for it, or a decode failure that says why.
 * The subscription is chosen by source and detail-type; its contract does the decoding.
 */
export const route = <R, E>(
  body: string,
  subscriptions: ReadonlyArray<Subscription<R, E>>
): Effect.Effect<Effect.Effect<void, E, R>, DecodeFailure> =>
  Effect.gen(function* () {
    const parsed = yield* parseJson(body)
    const source = field(parsed, "source")
    const detailType = field(parsed, "detail-type")
    if (source === undefined || detailType === undefined) {
      return yield* new EventDecodeError({ reason: "not an EventBridge event: missing source or detail-type" })
    }
    const subscription = subscriptions.find(
      (candidate) => candidate.source === source && candidate.detailType === detailType
    )
    if (subscription === undefined) {
      return yield* new UnknownEventType({ source, detailType })
    }
    return yield* subscription.dispatch(parsed)
  })

/** A one-line reason for a decode failure, as it is attached to a dead-lettered message. */
export const describeDecodeFailure = (failure: DecodeFailure): string => {
  switch (failure._tag) {
    case "EventDecodeError":
      return failure.detailType === undefined
        ? `malformed event: ${failure.reason}`
        : `malformed "${failure.detailType}" event: ${failure.reason}`
    case "UnsupportedSchemaVersion":
      return `unsupported schema version ${JSON.stringify(failure.version)} of "${failure.detailType}" (this build reads version ${failure.supported})`
    case "UnknownEventType":
      return `unknown event type: source "${failure.source}", detail-type "${failure.detailType}"`
  }
}

/** A service's subscriptions as one list, whose handlers need the union of what each needs. */
export const subscriptionSet = <R1, E1, R2 = never, E2 = never, R3 = never, E3 = never, R4 = never, E4 = never, R5 = never, E5 = never, R6 = never, E6 = never>(
  first: Subscription<R1, E1>,
  second?: Subscription<R2, E2>,
  third?: Subscription<R3, E3>,
  fourth?: Subscription<R4, E4>,
  fifth?: Subscription<R5, E5>,
  sixth?: Subscription<R6, E6>
): ReadonlyArray<Subscription<R1 | R2 | R3 | R4 | R5 | R6, E1 | E2 | E3 | E4 | E5 | E6>> =>
  [first, second, third, fourth, fifth, sixth].filter((entry) => entry !== undefined)

/** A contract with an optional narrowing on detail fields: what one rule of one service matches. */
export interface Route<S extends string, D extends string, T> {
  readonly contract: Contract<S, D, T>
  readonly detailFilter?: Readonly<Record<string, ReadonlyArray<unknown>>>
}

export const eventRoute = <S extends string, D extends string, T>(
  contract: Contract<S, D, T>,
  detailFilter?: Readonly<Record<string, ReadonlyArray<unknown>>>
): Route<S, D, T> => (detailFilter === undefined ? { contract } : { contract, detailFilter })

export const patternOfRoute = <S extends string, D extends string, T>(target: Route<S, D, T>): EventPattern =>
  target.contract.pattern(target.detailFilter)

/** Subscribes a handler to a route: the rule's pattern and the handler's event type come from one object. */
export const subscribeTo = <S extends string, D extends string, T, R, E>(
  target: Route<S, D, T>,
  handle: (event: BusEvent<S, D, T>) => Effect.Effect<void, E, R>
): Subscription<R, E> => subscribe(target.contract, handle, target.detailFilter)
