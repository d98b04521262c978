import { Effect, Either, ParseResult, Schema } from "effect"

/** The version of the detail schema that this build publishes and accepts for owned events. */
export const CURRENT_SCHEMA_VERSION = 1 as const

/** The source of every event that backup-actions publishes on its bus. */
export const OWNED_SOURCE = "backup-actions" as const

/** An EventBridge event pattern, as used by rules both locally and in CDK. */
export interface EventPattern {
  readonly source: ReadonlyArray<string>
  readonly "detail-type": ReadonlyArray<string>
  readonly detail?: Readonly<Record<string, ReadonlyArray<unknown>>>
}

/** The body could not be turned into a typed event; the reason says why. */
export class EventDecodeError extends Schema.TaggedError<EventDecodeError>()("EventDecodeError", {
  reason: Schema.String,
  detailType: Schema.optional(Schema.String)
}) {}

/** The event is of a known type but of a schema version this build does not understand. */
export class UnsupportedSchemaVersion extends Schema.TaggedError<UnsupportedSchemaVersion>()(
  "UnsupportedSchemaVersion",
  { detailType: Schema.String, version: Schema.Unknown, supported: Schema.Number }
) {}

/** The event's source and detail-type match no contract the consumer knows. */
export class UnknownEventType extends Schema.TaggedError<UnknownEventType>()("UnknownEventType", {
  source: Schema.String,
  detailType: Schema.String
}) {}

export type DecodeFailure = EventDecodeError | UnsupportedSchemaVersion | UnknownEventType

const envelopeFields = {
  version: Schema.String,
  id: Schema.String,
  /** Real EventBridge always sets it; the emulator leaves it out of custom-bus events. */
  account: Schema.optional(Schema.String),
  time: Schema.String,
  region: Schema.String,
  resources: Schema.Array(Schema.String)
}

/** The fields that every detail of an owned event carries. */
export const OwnedDetailFields = {
  schemaVersion: Schema.Literal(CURRENT_SCHEMA_VERSION),
  /** The recovery-point ARN that the whole chain of events is about. */
  correlationId: Schema.String,
  /** Stable per recovery point and action: a replayed event carries the same key. */
  idempotencyKey: Schema.String
}

const formatIssue = (error: ParseResult.ParseError): string =>
  ParseResult.TreeFormatter.formatErrorSync(error).replace(/\s+/g, " ").trim()

/**
 * One contract per event type: the single source of the schema, the TS type, the decoder
 * and the EventBridge pattern that local provisioning and the CDK rules both use.
 */
export interface Contract<Source extends string, DetailType extends string, Detail> {
  readonly source: Source
  readonly detailType: DetailType
  /** Owned events carry a schema version; inbound AWS events do not. */
  readonly versioned: boolean
  /** The pattern matching every event of this type, optionally narrowed on detail fields. */
  readonly pattern: (detail?: Readonly<Record<string, ReadonlyArray<unknown>>>) => EventPattern
  /** Turns an already-parsed EventBridge event into a typed one, or a tagged error. */
  readonly decode: (
    event: unknown
  ) => Effect.Effect<BusEvent<Source, DetailType, Detail>, EventDecodeError | UnsupportedSchemaVersion>
  /** Validates a detail before it is published. */
  encodeDetail(detail: Detail): Effect.Effect<unknown, EventDecodeError>
}

export interface BusEvent<Source extends string, DetailType extends string, Detail> {
  readonly version: string
  readonly id: string
  readonly "detail-type": DetailType
  readonly source: Source
  readonly account?: string | undefined
  readonly time: string
  readonly region: string
  readonly resources: ReadonlyArray<string>
  readonly detail: Detail
  /** Present on events that an EventBridge replay re-delivered. */
  readonly "replay-name"?: string | undefined
}

export const defineContract = <Source extends string, DetailType extends string, Detail, DetailEncoded>(options: {
  readonly source: Source
  readonly detailType: DetailType
  readonly detail: Schema.Schema<Detail, DetailEncoded>
  readonly versioned: boolean
}): Contract<Source, DetailType, Detail> => {
  const eventSchema = Schema.Struct({
    ...envelopeFields,
    "detail-type": Schema.Literal(options.detailType),
    source: Schema.Literal(options.source),
    detail: options.detail,
    "replay-name": Schema.optional(Schema.String)
  })
  const decodeEvent = Schema.decodeUnknownEither(eventSchema, { errors: "all", onExcessProperty: "ignore" })
  const encode = Schema.encodeEither(options.detail)

  const versionOf = (event: unknown): unknown =>
    typeof event === "object" && event !== null && "detail" in event
      ? typeof event.detail === "object" && event.detail !== null && "schemaVersion" in event.detail
        ? event.detail.schemaVersion
        : undefined
      : undefined

  return {
    source: options.source,
    detailType: options.detailType,
    versioned: options.versioned,
    pattern: (detail) => ({
      source: [options.source],
      "detail-type": [options.detailType],
      ...(detail === undefined ? {} : { detail })
    }),
    decode: (event) =>
      Effect.gen(function* () {
        if (options.versioned) {
          const version = versionOf(event)
          if (version !== CURRENT_SCHEMA_VERSION) {
            return yield* new UnsupportedSchemaVersion({
              detailType: options.detailType,
              version: version ?? null,
              supported: CURRENT_SCHEMA_VERSION
            })
          }
        }
        const decoded = decodeEvent(event)
        if (Either.isLeft(decoded)) {
          return yield* new EventDecodeError({ reason: formatIssue(decoded.left), detailType: options.detailType })
        }
        return decoded.right
      }),
    encodeDetail: (detail) =>
      Either.match(encode(detail), {
        onLeft: (error) => Effect.fail(new EventDecodeError({ reason: formatIssue(error), detailType: options.detailType })),
        onRight: (encoded) => Effect.succeed<unknown>(encoded)
      })
  }
}

export type AnyContract = Contract<string, string, unknown>
export type EventOf<C> = C extends Contract<infer S, infer D, infer T> ? BusEvent<S, D, T> : never
export type DetailOf<C> = C extends Contract<string, string, infer T> ? T : never
