import { assert, describe, it } from "@effect/vitest"
import { percentile, summarizeLatencies } from "./latency-summary"

describe("the burst's latency summary", () => {
  it("gives the 50th and 99th smallest of a hundred latencies as p50 and p99, in whatever order they came", () => {
    // Prepare: 1..100 ms, shuffled by a fixed stride so that the input is not sorted
    const values = Array.from({ length: 100 }, (_, index) => ((index * 37) % 100) + 1)
    // Act
    const summary = summarizeLatencies(values)
    // Assess
    assert.deepStrictEqual(summary, { count: 100, p50: 50, p99: 99, max: 100 })
  })

  it("takes a sample that was measured, never a value between two, for a percentile of a few samples", () => {
    // Prepare
    const sorted = [10, 20, 30, 1000]
    // Act
    const p50 = percentile(sorted, 0.5)
    const p99 = percentile(sorted, 0.99)
    // Assess: the 2nd of 4 and the last of 4
    assert.strictEqual(p50, 20)
    assert.strictEqual(p99, 1000)
  })

  it("summarizes one latency as itself and no latencies as nothing", () => {
    // Act
    const one = summarizeLatencies([42])
    const none = summarizeLatencies([])
    // Assess
    assert.deepStrictEqual(one, { count: 1, p50: 42, p99: 42, max: 42 })
    assert.isUndefined(none)
  })
})
