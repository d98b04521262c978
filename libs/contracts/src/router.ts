import { Effect } from "effect"
import {
  type BusEvent,
  type Contract,
  type DecodeFailure,
  type EventPattern,
  EventDecodeError,
  MAX_DECODE_REASON_LENGTH,
  UnknownEventType,
  clipText,
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
    catch: (error) => new EventDecodeError({ reason: `body is not JSON (${clipText(error instanceof Error ? error.message : String(error), 120)})` })
  })

/** A JSON value as a reason quotes it, cut short. */
const quoted = (value: unknown): string => clipText(JSON.stringify(value) ?? String(value), 40)

/** The envelope field that picks the contract, or what is wrong with it. */
const field = (value: object, name: string): { readonly value: string } | { readonly problem: string } => {
  const entry: unknown = Reflect.get(value, name)
  return typeof entry === "string"
    ? { value: entry }
    : { problem: entry === undefined ? `${name} is missing` : `${name}: expected string, got ${quoted(entry)}` }
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
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
      return yield* new EventDecodeError({ reason: `not an EventBridge event: expected an object, got ${quoted(parsed)}` })
    }
    const sourceField = field(parsed, "source")
    const detailTypeField = field(parsed, "detail-type")
    if (!("value" in sourceField) || !("value" in detailTypeField)) {
      const problems = [sourceField, detailTypeField].flatMap((entry) => ("problem" in entry ? [entry.problem] : []))
      return yield* new EventDecodeError({ reason: `not an EventBridge event: ${problems.join("; ")}` })
    }
    const source = sourceField.value
    const detailType = detailTypeField.value
    const subscription = subscriptions.find(
      (candidate) => candidate.source === source && candidate.detailType === detailType
    )
    if (subscription === undefined) {
      return yield* new UnknownEventType({ source, detailType })
    }
    return yield* subscription.dispatch(parsed)
  })

const describe = (failure: DecodeFailure): string => {
  switch (failure._tag) {
    case "EventDecodeError":
      return failure.detailType === undefined
        ? `malformed event: ${failure.reason}`
        : `malformed "${clipText(failure.detailType, 60)}" event: ${failure.reason}`
    case "UnsupportedSchemaVersion":
      return `unsupported schema version ${quoted(failure.version)} of "${clipText(failure.detailType, 60)}" (this build reads version ${failure.supported})`
    case "UnknownEventType":
      return `unknown event type: source "${clipText(failure.source, 80)}", detail-type "${clipText(failure.detailType, 80)}"`
  }
}

/**
 * A one-line reason for a decode failure, as it is attached to a dead-lettered message: the
 * field at fault and what is wrong with it (`detail.backupVaultName is missing`), or the type
 * nobody subscribes to, under MAX_DECODE_REASON_LENGTH characters.
 */
export const describeDecodeFailure = (failure: DecodeFailure): string => clipText(describe(failure), MAX_DECODE_REASON_LENGTH - 1)

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
