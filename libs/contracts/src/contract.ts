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
  /** EventBridge sets it on what it delivers from a bus; an event that reaches a queue another way may lack it. */
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

/** The longest reason a decode failure gives: it travels beside a dead letter and into logs. */
export const MAX_DECODE_REASON_LENGTH = 300

/** What the issues of one failure may take of that, leaving room for the event's name. */
const ISSUES_BUDGET = 220

/** Cuts a text to at most `max` characters, marking the cut. */
export const clipText = (text: string, max: number): string => (text.length <= max ? text : `${text.slice(0, max - 1)}…`)

/** A path as it reads in the event's JSON: `detail.createdBy.backupPlanId`, `resources[1]`. */
const pathText = (root: string, path: ReadonlyArray<PropertyKey>): string =>
  path.reduce<string>(
    (text, key) => (typeof key === "number" ? `${text}[${key}]` : text === "" ? String(key) : `${text}.${String(key)}`),
    root
  ) || "the event"

/** A struct's or an array's whole type says nothing the path does not: "an object", "an array". */
const expectedText = (expected: string): string =>
  expected.startsWith("{") ? "an object" : expected.startsWith("ReadonlyArray<") ? "an array" : clipText(expected, 60)

const EXPECTED_ACTUAL = /^Expected ([\s\S]*?), actual ([\s\S]*)$/

/**
 * One line per path from effect's flat list of issues: `detail.backupVaultName is missing`,
 * `detail.status: expected string, got 42`; a union's alternatives are joined with "or".
 */
const issueLines = (root: string, issues: ReadonlyArray<ParseResult.ArrayFormatterIssue>): ReadonlyArray<string> => {
  const byPath = new Map<string, { readonly missing: boolean; readonly expected: Array<string>; actual?: string; readonly other: Array<string> }>()
  for (const issue of issues) {
    const path = pathText(root, issue.path)
    const entry = byPath.get(path) ?? { missing: issue._tag === "Missing", expected: [], other: [] }
    byPath.set(path, entry)
    if (issue._tag === "Missing") continue
    const parts = EXPECTED_ACTUAL.exec(issue.message)
    if (parts === null) entry.other.push(issue.message)
    else {
      const expected = expectedText(parts[1] ?? "")
      if (!entry.expected.includes(expected)) entry.expected.push(expected)
      entry.actual = clipText(parts[2] ?? "", 40)
    }
  }
  // An optional field's "or undefined" is noise beside what it should have been; and an optional
  // object that failed inside says so at the inner path, not again as "expected undefined".
  const isParent = (path: string) => [...byPath.keys()].some((other) => other.startsWith(`${path}.`) || other.startsWith(`${path}[`))
  for (const [path, entry] of byPath) {
    const defined = entry.expected.filter((expected) => expected !== "undefined")
    if (defined.length === 0 && entry.expected.length > 0 && isParent(path)) byPath.delete(path)
    else if (defined.length > 0) entry.expected.splice(0, entry.expected.length, ...defined)
  }
  return [...byPath.entries()].map(([path, entry]) =>
    entry.missing
      ? `${path} is missing`
      : entry.expected.length > 0
        ? `${path}: expected ${entry.expected.join(" or ")}, got ${entry.actual ?? "nothing"}`
        : `${path}${entry.other[0]?.startsWith("is ") === true ? " " : ": "}${clipText(entry.other.join(", "), 80)}`
  )
}

/** Joins lines while they fit the budget, then says how many were left out. */
const withinBudget = (lines: ReadonlyArray<string>, budget: number): string => {
  let text = ""
  for (const [index, line] of lines.entries()) {
    const candidate = text === "" ? line : `${text}; ${line}`
    const left = lines.length - index - 1
    if (candidate.length + (left > 0 ? `; and ${left} more`.length : 0) > budget) {
      if (text !== "") return `${text}; and ${lines.length - index} more`
      const rest = left > 0 ? `; and ${left} more` : ""
      return `${clipText(line, budget - rest.length)}${rest}`
    }
    text = candidate
  }
  return text
}

/**
 * A decode failure as the path of each offending field and what is wrong with it, several
 * joined by "; ", short enough for a DLQ reason. `root` prefixes the paths of a bare detail.
 */
const formatIssue = (error: ParseResult.ParseError, root = ""): string =>
  withinBudget(issueLines(root, ParseResult.ArrayFormatter.formatErrorSync(error)), ISSUES_BUDGET)

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
  /** Turns a stored detail (an outcome kept in the ledger's outbox) back into a typed one. */
  decodeDetail(detail: unknown): Effect.Effect<Detail, EventDecodeError>
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
  const decodeDetail = Schema.decodeUnknownEither(options.detail, { errors: "all", onExcessProperty: "ignore" })

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
        onLeft: (error) => Effect.fail(new EventDecodeError({ reason: formatIssue(error, "detail"), detailType: options.detailType })),
        onRight: (encoded) => Effect.succeed<unknown>(encoded)
      }),
    decodeDetail: (detail) =>
      Either.match(decodeDetail(detail), {
        onLeft: (error) => Effect.fail(new EventDecodeError({ reason: formatIssue(error, "detail"), detailType: options.detailType })),
        onRight: (decoded) => Effect.succeed(decoded)
      })
  }
}

export type AnyContract = Contract<string, string, unknown>
export type EventOf<C> = C extends Contract<infer S, infer D, infer T> ? BusEvent<S, D, T> : never
export type DetailOf<C> = C extends Contract<string, string, infer T> ? T : never
