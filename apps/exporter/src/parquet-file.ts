import { createHash } from "node:crypto"
import { createReadStream } from "node:fs"
import { open, type FileHandle } from "node:fs/promises"
import { createInterface } from "node:readline"
import { Effect, Schema } from "effect"
import { ByteWriter, ParquetWriter, type SchemaElement } from "hyparquet-writer"
import { cellOf, type Cell, type ColumnPlan, type ColumnType, type WireItem } from "./items"

/** Writing the Parquet file (or reading the spooled items it is made from) failed. */
export class ParquetWriteFailed extends Schema.TaggedError<ParquetWriteFailed>()("ParquetWriteFailed", {
  file: Schema.String,
  reason: Schema.String
}) {}

/** The file as written: its size and the SHA-256 computed over exactly those bytes. */
export interface WrittenParquet {
  readonly file: string
  readonly bytes: number
  readonly rows: number
  readonly rowGroups: number
  /** Base64, as S3 reports ChecksumSHA256. */
  readonly sha256: string
}

/** A row group closes at whichever comes first; together they bound the writer's memory. */
export interface RowGroupLimits {
  readonly rows: number
  readonly spooledBytes: number
}

export const DEFAULT_ROW_GROUP_LIMITS: RowGroupLimits = { rows: 50_000, spooledBytes: 32 * 1024 * 1024 }

const elementOf = (column: ColumnPlan): SchemaElement => {
  const base = { name: column.name, repetition_type: "OPTIONAL" as const }
  const byType: Record<ColumnType, SchemaElement> = {
    STRING: { ...base, type: "BYTE_ARRAY", converted_type: "UTF8" },
    INT64: { ...base, type: "INT64" },
    DOUBLE: { ...base, type: "DOUBLE" },
    BOOLEAN: { ...base, type: "BOOLEAN" },
    BINARY: { ...base, type: "BYTE_ARRAY" },
    JSON: { ...base, type: "BYTE_ARRAY", converted_type: "JSON", logical_type: { type: "JSON" } }
  }
  return byType[column.type]
}

/** The Parquet schema of the planned columns, every column optional (items differ in shape). */
export const parquetSchemaOf = (columns: ReadonlyArray<ColumnPlan>): Array<SchemaElement> => [
  { name: "root", num_children: columns.length },
  ...columns.map(elementOf)
]

/**
 * A byte writer that, after every row group, appends what it holds to the file and hashes
 * it, then starts over: the file is never held in memory whole.
 */
class HashingFileWriter extends ByteWriter {
  readonly hash = createHash("sha256")
  constructor(private readonly handle: FileHandle) {
    super(1024 * 1024)
  }

  async flush(): Promise<void> {
    const chunk = new Uint8Array(this.buffer, 0, this.index)
    this.hash.update(chunk)
    await this.handle.write(chunk)
    this.index = 0
  }
}

async function* spooledItems(files: ReadonlyArray<string>): AsyncGenerator<{ readonly item: WireItem; readonly bytes: number }> {
  for (const file of files) {
    const lines = createInterface({ input: createReadStream(file, { encoding: "utf8" }), crlfDelay: Infinity })
    for await (const line of lines) {
      if (line.length === 0) continue
      const parsed: WireItem = JSON.parse(line)
      yield { item: parsed, bytes: line.length }
    }
  }
}

const writeFile = async (
  target: string,
  spoolFiles: ReadonlyArray<string>,
  columns: ReadonlyArray<ColumnPlan>,
  metadata: Record<string, string>,
  limits: RowGroupLimits,
  signal: AbortSignal
): Promise<WrittenParquet> => {
  const handle = await open(target, "w")
  try {
    const writer = new HashingFileWriter(handle)
    const parquet = new ParquetWriter({
      writer,
      schema: parquetSchemaOf(columns),
      codec: "SNAPPY",
      kvMetadata: Object.entries(metadata).map(([key, value]) => ({ key, value })),
      createdBy: "backup-actions exporter"
    })
    let cells: Array<Array<Cell>> = columns.map(() => [])
    let pendingRows = 0
    let pendingBytes = 0
    let rows = 0
    let rowGroups = 0
    const closeGroup = async () => {
      if (pendingRows === 0) return
      const columnData = columns.map((column, index) => ({
        name: column.name,
        data: column.type === "JSON" ? (cells[index] ?? []).map((cell) => (cell !== null && typeof cell === "object" && "json" in cell ? cell.json : cell)) : (cells[index] ?? [])
      }))
      await parquet.write({ columnData, rowGroupSize: pendingRows })
      rows += pendingRows
      rowGroups += 1
      cells = columns.map(() => [])
      pendingRows = 0
      pendingBytes = 0
    }
    for await (const { item, bytes } of spooledItems(spoolFiles)) {
      if (signal.aborted) throw new Error("interrupted")
      columns.forEach((column, index) => cells[index]?.push(cellOf(column, item[column.name])))
      pendingRows += 1
      pendingBytes += bytes
      if (pendingRows >= limits.rows || pendingBytes >= limits.spooledBytes) await closeGroup()
    }
    await closeGroup()
    await parquet.finish()
    // The footer is in the buffer now: ByteWriter's finish() is typed to return nothing, so the last flush is ours.
    await writer.flush()
    return { file: target, bytes: writer.offset, rows, rowGroups, sha256: writer.hash.digest("base64") }
  } finally {
    await handle.close()
  }
}

/**
 * Writes the spooled items (NDJSON of DynamoDB JSON, one file per scan segment) as one
 * Parquet file, a row group at a time, hashing the bytes as they are written.
 */
export const writeParquet = (options: {
  readonly target: string
  readonly spoolFiles: ReadonlyArray<string>
  readonly columns: ReadonlyArray<ColumnPlan>
  readonly metadata: Record<string, string>
  readonly limits?: RowGroupLimits
}) =>
  Effect.tryPromise({
    try: (signal) =>
      writeFile(options.target, options.spoolFiles, options.columns, options.metadata, options.limits ?? DEFAULT_ROW_GROUP_LIMITS, signal),
    catch: (error) => new ParquetWriteFailed({ file: options.target, reason: error instanceof Error ? error.message : String(error) })
  })
