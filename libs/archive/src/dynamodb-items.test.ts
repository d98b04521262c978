import { assert, describe, it } from "@effect/vitest"
import { UnexpectedCell, canonicalText, exportedValue, fileCellOf, fromWire, toWire, valueOfCell, type ColumnPlan, type WireValue } from "./dynamodb-items"

const column = (type: ColumnPlan["type"], dynamodbTypes: ReadonlyArray<string>): ColumnPlan => ({ name: "a", type, dynamodbTypes })

/** A value through the file and back: its cell as a reader gives it, then the value of that cell. */
const roundTrip = (plan: ColumnPlan, value: WireValue) => valueOfCell(plan, fileCellOf(plan, value))

describe("reading DynamoDB values back from the export's cells", () => {
  it("gives back every scalar as the source had it, numbers with all their digits", () => {
    // Prepare
    const cases: ReadonlyArray<readonly [ColumnPlan, WireValue]> = [
      [column("STRING", ["S"]), { S: "naïve ✓" }],
      [column("STRING", ["N"]), { N: "123456789012345678901234567890.5" }],
      [column("INT64", ["N"]), { N: "-9223372036854775808" }],
      [column("DOUBLE", ["N"]), { N: "2.25" }],
      [column("BOOLEAN", ["BOOL"]), { BOOL: false }],
      [column("BINARY", ["B"]), { B: Buffer.from([0, 1, 255]).toString("base64") }]
    ]
    // Act and Assess
    for (const [plan, value] of cases) assert.deepStrictEqual(roundTrip(plan, value), value, plan.type)
  })

  it("gives back sets, maps and lists from a JSON column, typed by what the scan found under the attribute", () => {
    // Prepare
    const nested: WireValue = { M: { n: { N: "1.50" }, big: { N: "123456789012345678901234567890" }, l: { L: [{ S: "x" }, { NULL: true }, { BOOL: true }, { M: {} }] } } }
    // Act and Assess
    assert.deepStrictEqual(roundTrip(column("JSON", ["SS"]), { SS: ["b", "a"] }), { SS: ["b", "a"] })
    assert.deepStrictEqual(roundTrip(column("JSON", ["NS"]), { NS: ["1", "12345678901234567890123"] }), { NS: ["1", "12345678901234567890123"] })
    assert.deepStrictEqual(roundTrip(column("JSON", ["BS"]), { BS: ["AAE="] }), { BS: ["AAE="] })
    assert.deepStrictEqual(roundTrip(column("JSON", ["M"]), nested), nested)
    assert.deepStrictEqual(roundTrip(column("JSON", ["N", "S"]), { S: "13" }), { S: "13" })
    assert.deepStrictEqual(roundTrip(column("JSON", ["N", "S"]), { N: "13" }), { N: "13" })
    // A list of strings where lists and sets were both found stays a list
    assert.deepStrictEqual(roundTrip(column("JSON", ["L", "SS"]), { L: [{ S: "a" }] }), { L: [{ S: "a" }] })
  })

  it("keeps what the format cannot tell apart the same on both sides: NULL as a missing attribute, a nested set as a list", () => {
    // Act and Assess
    assert.isUndefined(exportedValue(column("STRING", []), { NULL: true }))
    assert.isUndefined(exportedValue(column("STRING", []), undefined))
    assert.deepStrictEqual(exportedValue(column("JSON", ["M"]), { M: { s: { SS: ["a"] }, b: { B: "AAE=" } } }), { M: { s: { L: [{ S: "a" }] }, b: { S: "AAE=" } } })
  })

  it("refuses a cell that its column cannot hold", () => {
    assert.throws(() => valueOfCell(column("INT64", ["N"]), "12"), UnexpectedCell)
  })

  it("converts to the SDK's attribute values and back", () => {
    // Prepare
    const value: WireValue = { M: { b: { B: "AAE=" }, bs: { BS: ["AAE="] }, l: { L: [{ N: "1" }, { NULL: true }] } } }
    // Act and Assess
    assert.deepStrictEqual(toWire(fromWire(value)), value)
  })
})

describe("the canonical text of a value", () => {
  it("does not depend on the order of a map's keys or a set's members, and does on a list's", () => {
    assert.strictEqual(canonicalText({ M: { a: { SS: ["x", "y"] }, b: { N: "1" } } }), canonicalText({ M: { b: { N: "1" }, a: { SS: ["y", "x"] } } }))
    assert.notStrictEqual(canonicalText({ L: [{ S: "x" }, { S: "y" }] }), canonicalText({ L: [{ S: "y" }, { S: "x" }] }))
    assert.notStrictEqual(canonicalText({ S: "1" }), canonicalText({ N: "1" }))
  })
})
