import { typeOf, type ColumnPlan, type ColumnType, type WireItem } from "@backup-actions/archive"

/*
 * The mapping of DynamoDB values to cells and back is the export format's, shared with its
 * readers (@backup-actions/archive); choosing the columns is the writer's own.
 */
export {
  cellOf,
  jsonText,
  jsonValue,
  toWire,
  toWireItem,
  typeOf,
  type Cell,
  type ColumnPlan,
  type ColumnType,
  type JsonCell,
  type WireItem,
  type WireValue
} from "@backup-actions/archive"

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
