import { assert, describe, it } from "@effect/vitest"
import { SchemaStats, cellOf, jsonText, planColumns, type WireItem } from "./items"

const statsOf = (items: ReadonlyArray<WireItem>) => {
  const stats = new SchemaStats()
  items.forEach((item) => stats.add(item))
  return stats
}

describe("choosing Parquet columns for DynamoDB items", () => {
  it("puts the key attributes first and types each attribute by what the scan found", () => {
    // Prepare
    const stats = statsOf([
      { pk: { S: "a" }, count: { N: "9223372036854775807" }, price: { N: "2.5" }, big: { N: "12345678901234567890" }, flag: { BOOL: true } },
      { pk: { S: "b" }, mixed: { S: "x" }, tags: { SS: ["t"] } },
      { pk: { S: "c" }, mixed: { N: "1" }, gone: { NULL: true } }
    ])
    // Act
    const columns = planColumns(stats, [{ name: "pk", type: "S" }])
    // Assess
    assert.deepStrictEqual(
      columns.map((column) => [column.name, column.type]),
      [["pk", "STRING"], ["big", "STRING"], ["count", "INT64"], ["flag", "BOOLEAN"], ["gone", "STRING"], ["mixed", "JSON"], ["price", "DOUBLE"], ["tags", "JSON"]]
    )
  })

  it("keeps the key columns of an empty table, typed from the table's definition", () => {
    // Act
    const columns = planColumns(new SchemaStats(), [{ name: "pk", type: "S" }, { name: "sk", type: "N" }])
    // Assess
    assert.deepStrictEqual(columns.map((column) => [column.name, column.type]), [["pk", "STRING"], ["sk", "INT64"]])
  })

  it("merges what parallel segments found into one schema", () => {
    // Prepare
    const first = statsOf([{ pk: { S: "a" }, amount: { N: "1" } }])
    const second = statsOf([{ pk: { S: "b" }, amount: { N: "1.5" } }])
    // Act
    first.merge(second)
    // Assess
    assert.strictEqual(first.items, 2)
    assert.deepStrictEqual(planColumns(first, [{ name: "pk", type: "S" }]).map((column) => column.type), ["STRING", "DOUBLE"])
  })
})

describe("writing DynamoDB values as JSON", () => {
  it("keeps every digit of a number and writes sets, binary and NULL as JSON has them", () => {
    // Act
    const text = jsonText({ M: { n: { N: "1.50" }, big: { N: "123456789012345678901234567890" }, s: { NS: ["1", "2"] }, b: { B: "AAE=" }, z: { NULL: true }, l: { L: [{ BOOL: false }] } } })
    // Assess
    assert.strictEqual(text, '{"n":1.50,"big":123456789012345678901234567890,"s":[1,2],"b":"AAE=","z":null,"l":[false]}')
  })

  it("writes a number that is not valid JSON as a string", () => {
    assert.strictEqual(jsonText({ N: ".5" }), '".5"')
  })

  it("gives a missing attribute and a NULL the same empty cell", () => {
    const column = { name: "a", type: "INT64" as const, dynamodbTypes: ["N"] }
    assert.strictEqual(cellOf(column, undefined), null)
    assert.strictEqual(cellOf(column, { NULL: true }), null)
    assert.strictEqual(cellOf(column, { N: "-7" }), -7n)
  })
})
