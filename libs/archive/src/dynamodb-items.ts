import type { AttributeValue } from "@aws-sdk/client-dynamodb"
import { Schema } from "effect"

/*
 * DynamoDB items as the Parquet export holds them: how an attribute value becomes a cell of
 * its column (the exporter's writer), and how a cell becomes a DynamoDB value again (the
 * exporter's read-back and the CLI's restore into a table).
 */

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
const fromBase64 = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, "base64"))

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

/** The inverse of toWire: a value for the SDK (PutItem, BatchWriteItem). */
export const fromWire = (value: WireValue): AttributeValue => {
  if ("S" in value) return { S: value.S }
  if ("N" in value) return { N: value.N }
  if ("B" in value) return { B: fromBase64(value.B) }
  if ("BOOL" in value) return { BOOL: value.BOOL }
  if ("NULL" in value) return { NULL: true }
  if ("SS" in value) return { SS: [...value.SS] }
  if ("NS" in value) return { NS: [...value.NS] }
  if ("BS" in value) return { BS: value.BS.map(fromBase64) }
  if ("L" in value) return { L: value.L.map(fromWire) }
  return { M: fromWireItem(value.M) }
}

export const fromWireItem = (item: WireItem): Record<string, AttributeValue> =>
  Object.fromEntries(Object.entries(item).map(([name, value]) => [name, fromWire(value)]))

/** The DynamoDB type letter(s) of a value: S, N, B, BOOL, NULL, SS, NS, BS, L, M. */
export const typeOf = (value: WireValue): string => Object.keys(value)[0] ?? "NULL"

/** The Parquet column types an attribute can get. */
export const ColumnType = Schema.Literal("STRING", "INT64", "DOUBLE", "BOOLEAN", "BINARY", "JSON")
export type ColumnType = typeof ColumnType.Type

/** One Parquet column: the attribute it holds and how (the export's manifest lists them). */
export const ColumnPlan = Schema.Struct({
  name: Schema.String,
  type: ColumnType,
  /** The DynamoDB types found under the attribute (NULL aside). */
  dynamodbTypes: Schema.Array(Schema.String)
})
export type ColumnPlan = typeof ColumnPlan.Type

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

/**
 * A cell as a Parquet reader gives it back: UTF-8 text for STRING, a bigint for INT64, a
 * number for DOUBLE, a boolean, the bytes of BINARY, and a JSON column's text as it is stored.
 */
export type FileCell = string | bigint | number | boolean | Uint8Array | null

/** The cell a value becomes in the file, in the form a reader gives it back. */
export const fileCellOf = (column: ColumnPlan, value: WireValue | undefined): FileCell => {
  const cell = cellOf(column, value)
  return cell !== null && typeof cell === "object" && "json" in cell ? JSON.stringify(cell.json) : cell
}

/** A number in parsed JSON, with its text exactly as the file has it. */
class JsonNumber {
  constructor(readonly text: string) {}
}

/** JSON.parse that keeps every number's text (the reviver's source text, Node.js 21+). */
const parseKeepingNumbers = (text: string): unknown =>
  JSON.parse(text, (_key: string, value: unknown, context?: { readonly source?: string }) =>
    typeof value === "number" ? new JsonNumber(context?.source ?? String(value)) : value
  )

/** A value nested in a JSON column: JSON's own types, as a list holds them. */
const nestedFromJson = (value: unknown): WireValue => {
  if (value === null) return { NULL: true }
  if (value instanceof JsonNumber) return { N: value.text }
  if (typeof value === "string") return { S: value }
  if (typeof value === "boolean") return { BOOL: value }
  if (Array.isArray(value)) return { L: value.map(nestedFromJson) }
  if (typeof value === "object") return { M: Object.fromEntries(Object.entries(value).map(([key, entry]) => [key, nestedFromJson(entry)])) }
  return { S: String(value) }
}

const allStrings = (values: ReadonlyArray<unknown>): values is ReadonlyArray<string> => values.every((entry) => typeof entry === "string")
const allNumbers = (values: ReadonlyArray<unknown>): values is ReadonlyArray<JsonNumber> => values.every((entry) => entry instanceof JsonNumber)
const distinct = (values: ReadonlyArray<string>): boolean => values.length > 0 && new Set(values).size === values.length

/**
 * A JSON column's value at the top of an item, typed by what the scan found under the
 * attribute: an array is a set when a set type (and no list) was found and its members fit,
 * a string is binary when only binary was found. Nested values take JSON's own types (a
 * nested set comes back as a list, nested binary as its base64 text).
 */
const topFromJson = (value: unknown, types: ReadonlyArray<string>): WireValue => {
  const has = (type: string) => types.includes(type)
  if (typeof value === "string") return has("S") ? { S: value } : has("B") ? { B: value } : has("N") ? { N: value } : { S: value }
  if (Array.isArray(value) && !has("L")) {
    if (has("SS") && allStrings(value) && distinct(value)) return { SS: value }
    if (has("NS") && allNumbers(value) && distinct(value.map((entry) => entry.text))) return { NS: value.map((entry) => entry.text) }
    if (has("BS") && allStrings(value) && distinct(value)) return { BS: value }
  }
  return nestedFromJson(value)
}

/** A cell whose type is not the column's: the file does not hold what its manifest says. */
export class UnexpectedCell extends Schema.TaggedError<UnexpectedCell>()("UnexpectedCell", {
  column: Schema.String,
  reason: Schema.String
}) {}

const unexpected = (column: ColumnPlan, cell: unknown): never => {
  throw new UnexpectedCell({ column: column.name, reason: `a ${column.type} column holds a ${typeof cell}` })
}

/**
 * The DynamoDB value of a cell (undefined for an empty one, which the item then lacks): the
 * inverse of cellOf, as far as the column keeps the value's type. Throws UnexpectedCell for a
 * cell that its column cannot hold.
 */
export const valueOfCell = (column: ColumnPlan, cell: FileCell | undefined): WireValue | undefined => {
  if (cell === null || cell === undefined) return undefined
  switch (column.type) {
    case "STRING":
      if (typeof cell !== "string") return unexpected(column, cell)
      return column.dynamodbTypes.length === 1 && column.dynamodbTypes[0] === "N" ? { N: cell } : { S: cell }
    case "INT64":
      return typeof cell === "bigint" || typeof cell === "number" ? { N: BigInt(cell).toString() } : unexpected(column, cell)
    case "DOUBLE":
      return typeof cell === "number" ? { N: String(cell) } : unexpected(column, cell)
    case "BOOLEAN":
      return typeof cell === "boolean" ? { BOOL: cell } : unexpected(column, cell)
    case "BINARY":
      return cell instanceof Uint8Array ? { B: base64(cell) } : unexpected(column, cell)
    case "JSON":
      return typeof cell === "string" ? topFromJson(parseKeepingNumbers(cell), column.dynamodbTypes) : unexpected(column, cell)
  }
}

/** An item from one row of cells (in the columns' order), attributes with empty cells left out. */
export const itemOfCells = (columns: ReadonlyArray<ColumnPlan>, cells: ReadonlyArray<FileCell | undefined>): WireItem => {
  const item: Record<string, WireValue> = {}
  columns.forEach((column, index) => {
    const value = valueOfCell(column, cells[index])
    if (value !== undefined) item[column.name] = value
  })
  return item
}

/**
 * A value as the export can carry it: mapped to its column's cell and back. What the format
 * does not keep (NULL against a missing attribute, the types of values nested in a JSON
 * column) is made the same on both sides of a comparison.
 */
export const exportedValue = (column: ColumnPlan, value: WireValue | undefined): WireValue | undefined => valueOfCell(column, fileCellOf(column, value))

const canonical = (value: WireValue): unknown => {
  if ("SS" in value) return { SS: [...value.SS].sort() }
  if ("NS" in value) return { NS: [...value.NS].sort() }
  if ("BS" in value) return { BS: [...value.BS].sort() }
  if ("L" in value) return { L: value.L.map(canonical) }
  if ("M" in value) {
    const keys = Object.keys(value.M).sort()
    return { M: Object.fromEntries(keys.map((key) => [key, canonical(value.M[key] ?? { NULL: true })])) }
  }
  return value
}

/**
 * A value's DynamoDB JSON with a map's keys and a set's members sorted: DynamoDB keeps
 * neither order, so a value reads the same from the source, the file and a restored table.
 */
export const canonicalText = (value: WireValue): string => JSON.stringify(canonical(value))
