import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import type { AsyncBuffer } from "hyparquet"
import { contentDifferences, readParquetContent, type ColumnPlan, type WireItem } from "@backup-actions/archive"
import { SchemaStats, planColumns } from "./items"
import { sourceContent } from "./parquet-content"
import { writeParquet } from "./parquet-file"

let scratch: string
beforeAll(() => {
  scratch = mkdtempSync(join(tmpdir(), "parquet-content-"))
})
afterAll(() => rmSync(scratch, { recursive: true, force: true }))

/** Items of every DynamoDB type, some attributes on a few items only, one attribute of two types. */
const itemsOf = (seed: number, count: number): ReadonlyArray<WireItem> =>
  Array.from({ length: count }, (_, index): WireItem => {
    const n = seed * 1000 + index
    return {
      pk: { S: `customer-${n % 7}` },
      sk: { N: String(n) },
      ...(index % 2 === 0 ? { price: { N: `${n}.25` } } : {}),
      ...(index % 3 === 0 ? { blob: { B: Buffer.from(`bytes ${n}`).toString("base64") } } : {}),
      ...(index % 4 === 0 ? { tags: { SS: [`t${n}`, "common"] } } : {}),
      ...(index % 5 === 0 ? { nested: { M: { big: { N: "123456789012345678901234567890.5" }, list: { L: [{ S: "a" }, { NULL: true }, { BOOL: true }] } } } } : {}),
      ...(index % 6 === 0 ? { mixed: index % 12 === 0 ? { S: "text" } : { N: "13" } } : {}),
      ...(index % 7 === 0 ? { nothing: { NULL: true } } : {}),
      ...(index % 8 === 0 ? { flag: { BOOL: index % 16 === 0 } } : {})
    }
  })

/** Spools the items in two segments, as the scan does, and plans their columns. */
const spool = (name: string, items: ReadonlyArray<WireItem>) => {
  const half = Math.ceil(items.length / 2)
  const files = [items.slice(0, half), items.slice(half)].map((segment, index) => {
    const file = join(scratch, `${name}-${index}.ndjson`)
    writeFileSync(file, segment.map((item) => `${JSON.stringify(item)}\n`).join(""))
    return file
  })
  const stats = new SchemaStats()
  items.forEach((item) => stats.add(item))
  const columns = planColumns(stats, [{ name: "pk", type: "S" }, { name: "sk", type: "N" }])
  return { files, columns }
}

/** A local file as the reader's random-access file. */
const localFile = (path: string): AsyncBuffer => {
  const bytes = readFileSync(path)
  return { byteLength: bytes.length, slice: (start, end) => bytes.buffer.slice(bytes.byteOffset + start, bytes.byteOffset + (end ?? bytes.length)) }
}

const writeFile = (name: string, files: ReadonlyArray<string>, columns: ReadonlyArray<ColumnPlan>) =>
  writeParquet({ target: join(scratch, `${name}.parquet`), spoolFiles: files, columns, metadata: {}, limits: { rows: 40, spooledBytes: 1024 * 1024 } })

describe("checking a Parquet export's content against its source", () => {
  it.effect("reads back the items and column checksums that the scanned items have, whatever the order of rows and sets", () =>
    Effect.gen(function* () {
      // Prepare
      const items = itemsOf(1, 150)
      const { files, columns } = spool("same", items)
      const written = yield* writeFile("same", files, columns)
      // The source's checksum taken from the items in another order, with sets and maps in another order
      const reordered = [...items].reverse().map((item) =>
        Object.fromEntries(Object.entries(item).reverse().map(([name, value]) => [name, "SS" in value ? { SS: [...value.SS].reverse() } : value]))
      )
      const other = spool("reordered", reordered)
      // Act
      const source = yield* sourceContent(other.files, columns)
      const readBack = yield* readParquetContent({ file: localFile(written.file), key: "same.parquet", columns })
      // Assess
      assert.strictEqual(written.rowGroups, 4)
      assert.strictEqual(readBack.items, 150)
      assert.deepStrictEqual(readBack, source)
      assert.deepStrictEqual(contentDifferences(source, "the source", readBack, "the file"), [])
      assert.deepStrictEqual(
        readBack.columns.map((column) => [column.name, column.values]),
        [["pk", 150], ["sk", 150], ["blob", 50], ["flag", 19], ["mixed", 25], ["nested", 30], ["nothing", 0], ["price", 75], ["tags", 38]]
      )
    })
  )

  it.effect("names the columns that differ when the file holds other items of the same shape", () =>
    Effect.gen(function* () {
      // Prepare: a valid file of other data with the same columns
      const { files, columns } = spool("source", itemsOf(1, 60))
      const forged = spool("forged", itemsOf(2, 60).map((item, index) => (index === 0 ? item : itemsOf(1, 60)[index] ?? item)))
      const written = yield* writeFile("forged", forged.files, columns)
      // Act
      const source = yield* sourceContent(files, columns)
      const readBack = yield* readParquetContent({ file: localFile(written.file), key: "forged.parquet", columns })
      // Assess: the first item differs, and so does every column in which it has a value
      const problems = contentDifferences(source, "the source", readBack, "the file")
      assert.deepStrictEqual(
        problems.map((problem) => problem.replace(/[0-9a-f]{64}/g, "<sum>")),
        ["pk", "sk", "blob", "price", "tags"].map((column) => `column ${column}: the file's checksum is <sum>, the source's <sum>`)
      )
    })
  )

  it.effect("counts a missing row and fails on a file that is not the manifest's columns", () =>
    Effect.gen(function* () {
      // Prepare
      const items = itemsOf(3, 30)
      const { files, columns } = spool("short", items)
      const shorter = spool("shorter", items.slice(1))
      const written = yield* writeFile("shorter", shorter.files, columns)
      const narrow = yield* writeFile("narrow", shorter.files, columns.slice(0, 3))
      // Act
      const source = yield* sourceContent(files, columns)
      const readBack = yield* readParquetContent({ file: localFile(written.file), key: "shorter.parquet", columns })
      const unreadable = yield* Effect.flip(readParquetContent({ file: localFile(narrow.file), key: "narrow.parquet", columns }))
      // Assess
      assert.include(contentDifferences(source, "the source", readBack, "the file"), "the file has 29 items, the source 30")
      assert.strictEqual(unreadable._tag, "ParquetUnreadable")
      assert.match(unreadable.reason, /^the file's columns are pk, sk, blob; the manifest's pk, sk, blob, flag, /)
    })
  )
})
