import type { AttributeValue } from "@aws-sdk/client-dynamodb"

/**
 * A DynamoDB attribute value as DynamoDB's own JSON has it: binary as base64. Items are
 * spooled to disk in this form between the scan and the Parquet writer.
 */
export type WireValue =
  | { readonly S: string }
  | { readonly N: string }
  | { readonly B: string }
  | { readonly BOOL: boolean }
  | { readonly NULL: true }
  | { readonly SS: ReadonlyArray<string> }
  | { readonly NS: ReadonlyArray<string> }
  | { readonly BS: ReadonlyArray<string> }
  | { readonly L: ReadonlyArray<WireValue> }
  | { readonly M: Readonly<Record<string, WireValue>> }

export type WireItem = Readonly<Record<string, WireValue>>

const base64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString("base64")

/** The SDK's attribute value in DynamoDB JSON; an unknown member type is kept as its JSON. */
export const toWire = (value: AttributeValue): WireValue => {
  if (value.S !== undefined) return { S: value.S }
  if (value.N !== undefined) return { N: value.N }
  if (value.B !== undefined) return { B: base64(value.B) }
  if (value.BOOL !== undefined) return { BOOL: value.BOOL }
  if (value.NULL !== undefined) return { NULL: true }
  if (value.SS !== undefined) return { SS: value.SS }
  if (value.NS !== undefined) return { NS: value.NS }
  if (value.BS !== undefined) return { BS: value.BS.map(base64) }
  if (value.L !== undefined) return { L: value.L.map(toWire) }
  if (value.M !== undefined) return { M: toWireItem(value.M) }
  return { S: JSON.stringify(value.$unknown ?? null) }
}

export const toWireItem = (item: Record<string, AttributeValue>): WireItem =>
  Object.fromEntries(Object.entries(item).map(([name, value]) => [name, toWire(value)]))

/** The DynamoDB type letter(s) of a value: S, N, B, BOOL, NULL, SS, NS, BS, L, M. */
export const typeOf = (value: WireValue): string => Object.keys(value)[0] ?? "NULL"

/** The Parquet column types an attribute can get. */
export type ColumnType = "STRING" | "INT64" | "DOUBLE" | "BOOLEAN" | "BINARY" | "JSON"

/** What the scan learnt about one top-level attribute, enough to choose its column type. */
export interface AttributeStats {
  readonly types: Set<string>
  /** Every N value is an integer within the INT64 range. */
  int64: boolean
  /** Every N value reads back as the same text from a double. */
  double: boolean
  present: number
}

const INT64_MIN = -(2n ** 63n)
const INT64_MAX = 2n ** 63n - 1n

const isInt64 = (text: string): boolean => {
  if (!/^-?\d+$/.test(text)) return false
  const value = BigInt(text)
  return value >= INT64_MIN && value <= INT64_MAX
}

/** Collects, item by item, the attribute names and the types seen under each. */
export class SchemaStats {
  readonly attributes = new Map<string, AttributeStats>()
  items = 0

  add(item: WireItem): void {
    this.items += 1
    for (const [name, value] of Object.entries(item)) {
      let stats = this.attributes.get(name)
      if (stats === undefined) {
        stats = { types: new Set(), int64: true, double: true, present: 0 }
        this.attributes.set(name, stats)
      }
      const type = typeOf(value)
      stats.present += 1
      if (type === "NULL") continue
      stats.types.add(type)
      if ("N" in value) {
        stats.int64 &&= isInt64(value.N)
        stats.double &&= String(Number(value.N)) === value.N
      }
    }
  }

  /** Merges another segment's findings into these. */
  merge(other: SchemaStats): void {
    this.items += other.items
    for (const [name, theirs] of other.attributes) {
      const ours = this.attributes.get(name)
      if (ours === undefined) {
        this.attributes.set(name, { ...theirs, types: new Set(theirs.types) })
        continue
      }
      for (const type of theirs.types) ours.types.add(type)
      ours.int64 &&= theirs.int64
      ours.double &&= theirs.double
      ours.present += theirs.present
    }
  }
}

/** One Parquet column: the attribute it holds and how. */
export interface ColumnPlan {
  readonly name: string
  readonly type: ColumnType
  /** The DynamoDB types found under the attribute (NULL aside). */
  readonly dynamodbTypes: ReadonlyArray<string>
}

/**
 * The column type of an attribute: a single scalar type maps to its Parquet type (numbers to
 * INT64 when all are integers that fit, else DOUBLE when all survive a double exactly, else
 * their text); anything else (maps, lists, sets, mixed types) becomes JSON text.
 */
export const columnTypeOf = (stats: AttributeStats): ColumnType => {
  if (stats.types.size !== 1) return stats.types.size === 0 ? "STRING" : "JSON"
  const [only] = stats.types
  switch (only) {
    case "S":
      return "STRING"
    case "N":
      return stats.int64 ? "INT64" : stats.double ? "DOUBLE" : "STRING"
    case "BOOL":
      return "BOOLEAN"
    case "B":
      return "BINARY"
    default:
      return "JSON"
  }
}

/** A key attribute as the table defines it: its name and scalar type (S, N or B). */
export interface KeyAttribute {
  readonly name: string
  readonly type: string
}

const KEY_COLUMN_TYPES: Record<string, ColumnType> = { S: "STRING", N: "INT64", B: "BINARY" }

/**
 * The columns of the file: the key attributes first, in key order (present even when the
 * table is empty), then the rest by name.
 */
export const planColumns = (stats: SchemaStats, keyAttributes: ReadonlyArray<KeyAttribute>): ReadonlyArray<ColumnPlan> => {
  const keyNames = keyAttributes.map((key) => key.name)
  const rest = [...stats.attributes.keys()].filter((name) => !keyNames.includes(name)).sort()
  const keys = keyAttributes.map((key): ColumnPlan => {
    const attribute = stats.attributes.get(key.name)
    return attribute === undefined || attribute.types.size === 0
      ? { name: key.name, type: KEY_COLUMN_TYPES[key.type] ?? "STRING", dynamodbTypes: [key.type] }
      : { name: key.name, type: columnTypeOf(attribute), dynamodbTypes: [...attribute.types].sort() }
  })
  return [
    ...keys,
    ...rest.map((name): ColumnPlan => {
      const attribute = stats.attributes.get(name)
      return attribute === undefined
        ? { name, type: "STRING", dynamodbTypes: [] }
        : { name, type: columnTypeOf(attribute), dynamodbTypes: [...attribute.types].sort() }
    })
  ]
}

const JSON_NUMBER = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?$/

/**
 * JSON.rawJSON (Node.js 21+, not yet in TypeScript's ES2023 library): a number inside a
 * value that JSON.stringify writes as its text, so that every digit is kept.
 */
const rawJson: (text: string) => unknown = Reflect.get(JSON, "rawJSON")

/** A DynamoDB number for JSON: its own text when that is valid JSON, else a string. */
const jsonNumber = (text: string): unknown => (JSON_NUMBER.test(text) ? rawJson(text) : text)

/**
 * A value as it is written to a JSON column: numbers keep every digit, binary is base64,
 * sets are arrays, NULL is null.
 */
export const jsonValue = (value: WireValue): unknown => {
  if ("S" in value) return value.S
  if ("N" in value) return jsonNumber(value.N)
  if ("B" in value) return value.B
  if ("BOOL" in value) return value.BOOL
  if ("NULL" in value) return null
  if ("SS" in value) return [...value.SS]
  if ("NS" in value) return value.NS.map(jsonNumber)
  if ("BS" in value) return [...value.BS]
  if ("L" in value) return value.L.map(jsonValue)
  return Object.fromEntries(Object.entries(value.M).map(([key, entry]) => [key, jsonValue(entry)]))
}

/** The JSON text of a value, as a JSON column holds it. */
export const jsonText = (value: WireValue): string => JSON.stringify(jsonValue(value))

/** A JSON column's cell: the writer stringifies it. */
export interface JsonCell {
  readonly json: unknown
}

/** A cell of a column, or null where the item lacks the attribute (or holds NULL). */
export type Cell = string | bigint | number | boolean | Uint8Array | JsonCell | null

export const cellOf = (column: ColumnPlan, value: WireValue | undefined): Cell => {
  if (value === undefined || "NULL" in value) return null
  switch (column.type) {
    case "JSON":
      return { json: jsonValue(value) }
    case "STRING":
      return "S" in value ? value.S : "N" in value ? value.N : jsonText(value)
    case "INT64":
      return "N" in value ? BigInt(value.N) : null
    case "DOUBLE":
      return "N" in value ? Number(value.N) : null
    case "BOOLEAN":
      return "BOOL" in value ? value.BOOL : null
    case "BINARY":
      return "B" in value ? new Uint8Array(Buffer.from(value.B, "base64")) : null
  }
}
