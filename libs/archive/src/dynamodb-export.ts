import { createHash } from "node:crypto"
import { GetObjectCommand, HeadObjectCommand } from "@aws-sdk/client-s3"
import { Duration, Effect, Schema } from "effect"
import { parquetMetadataAsync, parquetReadObjects, type AsyncBuffer } from "hyparquet"
import { S3, awsCall } from "@backup-actions/aws"
import { ColumnPlan, UnexpectedCell, canonicalText, exportedValue, itemOfCells, type FileCell, type WireItem, type WireValue } from "./dynamodb-items"

/*
 * A DynamoDB table's Parquet export as its readers see it: the manifest beside the file, the
 * content checksum that the exporter takes from the scanned items and the readers take again
 * from the file (the exporter's read-back) or from a restored table (the CLI's restore), and
 * the reading of the file's rows back into items.
 */

/**
 * How the content checksum is made: per column, the SHA-256 of each value's canonical
 * DynamoDB JSON (`canonicalText` of the value as the export carries it), added up modulo
 * 2^256. A sum does not depend on the order of the rows, so parallel scan segments, the
 * file's row groups and a restored table's scan all give the same one.
 */
export const CONTENT_CHECKSUM_ALGORITHM = "sha256-sum-of-values/v1"

/** One column's checksum: how many items hold a value there, and the sum (hex). */
export const ColumnChecksum = Schema.Struct({ name: Schema.String, values: Schema.Number, sum: Schema.String })
export type ColumnChecksum = typeof ColumnChecksum.Type

/** The item count and each column's checksum. */
export const ContentChecksum = Schema.Struct({
  algorithm: Schema.Literal(CONTENT_CHECKSUM_ALGORITHM),
  items: Schema.Number,
  columns: Schema.Array(ColumnChecksum)
})
export type ContentChecksum = typeof ContentChecksum.Type

const MODULUS = 1n << 256n

/** Adds items up into a ContentChecksum over the given columns. */
export class ContentSums {
  items = 0
  private readonly sums: Array<bigint>
  private readonly counts: Array<number>

  constructor(readonly columns: ReadonlyArray<ColumnPlan>) {
    this.sums = columns.map(() => 0n)
    this.counts = columns.map(() => 0)
  }

  /** An item as DynamoDB has it (the source's scan, a restored table's scan): each value as the export carries it. */
  addSourceItem(item: WireItem): void {
    this.add(this.columns.map((column) => exportedValue(column, item[column.name])))
  }

  /** An item read back from the file, its values already those the export carries. */
  addReadItem(item: WireItem): void {
    this.add(this.columns.map((column) => item[column.name]))
  }

  merge(other: ContentSums): void {
    this.items += other.items
    other.sums.forEach((sum, index) => (this.sums[index] = ((this.sums[index] ?? 0n) + sum) % MODULUS))
    other.counts.forEach((count, index) => (this.counts[index] = (this.counts[index] ?? 0) + count))
  }

  checksum(): ContentChecksum {
    return {
      algorithm: CONTENT_CHECKSUM_ALGORITHM,
      items: this.items,
      columns: this.columns.map((column, index) => ({ name: column.name, values: this.counts[index] ?? 0, sum: (this.sums[index] ?? 0n).toString(16).padStart(64, "0") }))
    }
  }

  private add(values: ReadonlyArray<WireValue | undefined>): void {
    this.items += 1
    values.forEach((value, index) => {
      if (value === undefined) return
      const digest = BigInt(`0x${createHash("sha256").update(canonicalText(value)).digest("hex")}`)
      this.sums[index] = ((this.sums[index] ?? 0n) + digest) % MODULUS
      this.counts[index] = (this.counts[index] ?? 0) + 1
    })
  }
}

/** What differs between two content checksums, each difference as one line; empty when they agree. */
export const contentDifferences = (expected: ContentChecksum, expectedName: string, actual: ContentChecksum, actualName: string): ReadonlyArray<string> => {
  const problems: Array<string> = []
  if (expected.items !== actual.items) problems.push(`${actualName} has ${actual.items} items, ${expectedName} ${expected.items}`)
  const theirs = new Map(actual.columns.map((column) => [column.name, column]))
  for (const column of expected.columns) {
    const found = theirs.get(column.name)
    if (found === undefined) problems.push(`${actualName} has no column ${column.name}`)
    else if (found.values !== column.values) problems.push(`column ${column.name}: ${actualName} has ${found.values} values, ${expectedName} ${column.values}`)
    else if (found.sum !== column.sum) problems.push(`column ${column.name}: ${actualName}'s checksum is ${found.sum}, ${expectedName}'s ${column.sum}`)
  }
  const ours = new Set(expected.columns.map((column) => column.name))
  for (const column of actual.columns) if (!ours.has(column.name)) problems.push(`${actualName} has a column ${column.name} that ${expectedName} has not`)
  return problems
}

export const DYNAMODB_PARQUET_MANIFEST_KIND = "backup-actions/dynamodb-parquet-manifest"

/** A key attribute of the source table: its name, HASH or RANGE, and its type (S, N or B). */
export const TableKeyElement = Schema.Struct({
  name: Schema.String,
  keyType: Schema.Literal("HASH", "RANGE"),
  type: Schema.Literal("S", "N", "B")
})
export type TableKeyElement = typeof TableKeyElement.Type

/**
 * The manifest the exporter writes beside data.parquet. `key`, `content` and `readBack` are
 * absent from manifests written before restores and content verification; `verified` was a
 * boolean then.
 */
export const DynamoDbParquetManifest = Schema.Struct({
  kind: Schema.Literal(DYNAMODB_PARQUET_MANIFEST_KIND),
  source: Schema.Struct({
    backupArn: Schema.String,
    table: Schema.String,
    tableArn: Schema.optional(Schema.String),
    recoveryPointArn: Schema.optional(Schema.String)
  }),
  data: Schema.Struct({ bucket: Schema.String, key: Schema.String, bytes: Schema.Number, rowGroups: Schema.Number }),
  itemCount: Schema.Number,
  columns: Schema.Array(ColumnPlan),
  /** The source table's key schema, in key order. */
  key: Schema.optional(Schema.Array(TableKeyElement)),
  /** Taken from the items as the scan returned them. */
  content: Schema.optional(ContentChecksum),
  /** Taken from the file as an independent reader read it back from S3. */
  readBack: Schema.optional(ContentChecksum),
  verified: Schema.Union(Schema.Literal("content", "upload", "none"), Schema.Boolean)
})
export type DynamoDbParquetManifest = typeof DynamoDbParquetManifest.Type

/** The file does not read as the export's Parquet: not Parquet, or not the manifest's columns. */
export class ParquetUnreadable extends Schema.TaggedError<ParquetUnreadable>()("ParquetUnreadable", {
  key: Schema.String,
  reason: Schema.String
}) {}

const reasonOf = (error: unknown): string =>
  error instanceof UnexpectedCell
    ? `column ${error.column}: ${error.reason}`
    : error instanceof Error
      ? error.message
      : String(error)

/**
 * An object in S3 as the Parquet reader's random-access file: each slice one ranged GET of
 * the version first seen (an object replaced while it is read fails the read).
 */
export const s3ParquetFile = (bucket: string, key: string) =>
  Effect.gen(function* () {
    const s3 = yield* S3
    const head = yield* awsCall("s3:HeadObject", (abortSignal) => s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }), { abortSignal }))
    const etag = head.ETag
    let bytesRead = 0
    const file: AsyncBuffer & { readonly bytesRead: () => number } = {
      byteLength: head.ContentLength ?? 0,
      bytesRead: () => bytesRead,
      slice: (start, end) => {
        const last = (end ?? head.ContentLength ?? 0) - 1
        return Effect.runPromise(
          awsCall(
            "s3:GetObject",
            async (abortSignal) => {
              const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key, Range: `bytes=${start}-${last}`, IfMatch: etag }), { abortSignal })
              const bytes = object.Body === undefined ? new Uint8Array(0) : await object.Body.transformToByteArray()
              bytesRead += bytes.byteLength
              return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer
            },
            { timeout: Duration.minutes(2) }
          )
        )
      }
    }
    return file
  })

const decoder = new TextDecoder()

/**
 * The file's items, one row group at a time (memory holds one group): the file's columns must
 * be the manifest's. Each item has the values the export carries (valueOfCell of each cell).
 */
export async function* parquetItems(file: AsyncBuffer, columns: ReadonlyArray<ColumnPlan>): AsyncGenerator<ReadonlyArray<WireItem>> {
  const metadata = await parquetMetadataAsync(file)
  const names = metadata.schema.slice(1).map((element) => element.name)
  const expected = columns.map((column) => column.name)
  if (names.length !== expected.length || names.some((name, index) => name !== expected[index])) {
    throw new Error(`the file's columns are ${names.join(", ") || "none"}; the manifest's ${expected.join(", ") || "none"}`)
  }
  let start = 0
  for (const group of metadata.row_groups) {
    const end = start + Number(group.num_rows)
    const rows = await parquetReadObjects({
      file,
      metadata,
      rowStart: start,
      rowEnd: end,
      rowFormat: "object",
      // BINARY stays bytes; a JSON column stays its text, whose numbers keep every digit.
      utf8: false,
      parsers: { jsonFromBytes: (bytes: Uint8Array | undefined) => (bytes === undefined ? undefined : decoder.decode(bytes)) }
    })
    yield rows.map((row) => itemOfCells(columns, columns.map((column): FileCell | undefined => row[column.name])))
    start = end
  }
}

/**
 * Reads the whole file and adds up its content checksum; `onItems` sees each row group's
 * items (a restore writes them). Fails with ParquetUnreadable when the file cannot be read
 * as the manifest's Parquet.
 */
export const readParquetContent = <E = never, R = never>(options: {
  readonly file: AsyncBuffer
  readonly key: string
  readonly columns: ReadonlyArray<ColumnPlan>
  readonly onItems?: (items: ReadonlyArray<WireItem>) => Effect.Effect<void, E, R>
}) =>
  Effect.gen(function* () {
    const sums = new ContentSums(options.columns)
    const groups = parquetItems(options.file, options.columns)
    const unreadable = (error: unknown) => new ParquetUnreadable({ key: options.key, reason: reasonOf(error) })
    while (true) {
      const next = yield* Effect.tryPromise({ try: () => groups.next(), catch: unreadable })
      if (next.done === true) break
      for (const item of next.value) sums.addReadItem(item)
      if (options.onItems !== undefined) yield* options.onItems(next.value)
    }
    return sums.checksum()
  })
