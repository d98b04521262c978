import { assert, describe, it } from "@effect/vitest"
import { DEFAULT_PART_SIZE, MAX_PARTS, compressedUpperBound, partSizeFor } from "./part-size"

const GiB = 1024 ** 3
const TiB = 1024 ** 4

describe("multipart part sizing", () => {
  it("uses the default part size while the input fits in 10,000 of them", () => {
    assert.strictEqual(partSizeFor(1 * GiB), DEFAULT_PART_SIZE)
    assert.strictEqual(partSizeFor(DEFAULT_PART_SIZE * MAX_PARTS), DEFAULT_PART_SIZE)
  })

  it("grows the part size with the input so that a 16 TiB volume still fits in 10,000 parts", () => {
    for (const size of [100 * GiB, 1 * TiB, 16 * TiB]) {
      const bound = compressedUpperBound(size)
      const part = partSizeFor(bound)
      assert.isAtMost(Math.ceil(bound / part), MAX_PARTS)
      assert.strictEqual(part % (1024 * 1024), 0)
    }
  })

  it("refuses an input that no part size can fit, such as a 64 TiB io2 volume with no room to compress", () => {
    assert.throws(() => partSizeFor(MAX_PARTS * 5 * GiB + 1), RangeError)
    assert.throws(() => partSizeFor(compressedUpperBound(64 * TiB)), /do not fit in 10000 parts/)
  })
})
