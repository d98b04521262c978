import { createHash } from "node:crypto"
import { assert, describe, it } from "@effect/vitest"
import { BlockSet, RawImageCheck, blockSetProblems, firstNonZero, type RawRange } from "./raw-check"

const sha = (bytes: Buffer) => createHash("sha256").update(bytes).digest("base64")

/** A 64 KiB image with data at 4 KiB and at 40 KiB, zeros elsewhere. */
const image = (): { readonly bytes: Buffer; readonly ranges: ReadonlyArray<RawRange> } => {
  const bytes = Buffer.alloc(64 * 1024)
  bytes.fill(7, 4096, 8192)
  bytes.fill(9, 40960, 45056)
  return {
    bytes,
    ranges: [
      { block: 1, offset: 4096, length: 4096, sha256: sha(bytes.subarray(4096, 8192)) },
      { block: 10, offset: 40960, length: 4096, sha256: sha(bytes.subarray(40960, 45056)) }
    ]
  }
}

const feedInPieces = (check: RawImageCheck, bytes: Buffer, piece: number) => {
  for (let at = 0; at < bytes.length; at += piece) check.feed(bytes.subarray(at, at + piece))
}

describe("the raw image check", () => {
  it("accepts an image whose listed ranges match and whose other bytes are zero, however it is cut", () => {
    // Prepare
    const { bytes, ranges } = image()
    // Act
    const results = [1000, 4096, 65536].map((piece) => {
      const check = new RawImageCheck(ranges, bytes.length)
      feedInPieces(check, bytes, piece)
      return { problems: check.finish(), matched: check.matched }
    })
    // Assess
    for (const result of results) assert.deepStrictEqual(result, { problems: [], matched: 2 })
  })

  it("names the block whose bytes differ", () => {
    // Prepare
    const { bytes, ranges } = image()
    bytes[41000] = 1
    const check = new RawImageCheck(ranges, bytes.length)
    // Act
    check.feed(bytes)
    const problems = check.finish()
    // Assess
    assert.strictEqual(problems.length, 1)
    assert.match(problems[0] ?? "", /^block 10 \(offset 40960\): SHA-256 \S+ differs from the manifest's \S+/)
  })

  it("names a non-zero byte where the manifest lists no data", () => {
    // Prepare
    const { bytes, ranges } = image()
    bytes[20000] = 5
    const check = new RawImageCheck(ranges, bytes.length)
    // Act
    feedInPieces(check, bytes, 3000)
    // Assess
    assert.deepStrictEqual(check.finish(), ["byte 20000 is not zero, but the manifest lists no data there"])
  })

  it("counts zeros fed without a buffer, inside and outside the listed ranges", () => {
    // Prepare
    const zeros = Buffer.alloc(8192)
    const check = new RawImageCheck([{ offset: 4096, length: 8192, sha256: sha(zeros) }], 16384)
    // Act
    check.feed({ zeros: 16384 })
    // Assess
    assert.deepStrictEqual(check.finish(), [])
    assert.strictEqual(check.matched, 1)
  })

  it("reports an image shorter than the manifest says, and ranges past its end", () => {
    // Prepare
    const { bytes, ranges } = image()
    const check = new RawImageCheck(ranges, bytes.length)
    // Act
    check.feed(bytes.subarray(0, 16384))
    const problems = check.finish()
    // Assess
    assert.deepStrictEqual(problems, [
      "the image holds 16384 bytes; the manifest says 65536",
      "block 10 (offset 40960) is listed in the manifest but lies past the image's last byte"
    ])
  })

  it("stops comparing at a manifest whose ranges go backwards", () => {
    // Prepare
    const { bytes, ranges } = image()
    const check = new RawImageCheck([...ranges].reverse(), bytes.length)
    // Act
    check.feed(bytes)
    const problems = check.finish()
    // Assess
    assert.match(problems.join("\n"), /out of order or empty; the rest of the image was not compared/)
  })

  it("finds the first non-zero byte past the first mebibyte", () => {
    // Prepare
    const bytes = Buffer.alloc(3 * 1024 * 1024)
    bytes[2 * 1024 * 1024 + 17] = 1
    // Act
    const found = firstNonZero(bytes)
    // Assess
    assert.strictEqual(found, 2 * 1024 * 1024 + 17)
    assert.strictEqual(firstNonZero(Buffer.alloc(10)), -1)
  })
})

describe("the blocks a snapshot lists against the blocks written to it", () => {
  it("keeps each block once, refuses indexes outside its capacity, and lists what one set has that the other lacks", () => {
    // Prepare
    const written = new BlockSet(20)
    const listed = new BlockSet(20)
    // Act
    const added = [0, 3, 3, 9, 19, 20, -1].map((index) => written.add(index))
    for (const index of [0, 9, 12]) listed.add(index)
    // Assess
    assert.deepStrictEqual(added, [true, true, true, true, true, false, false])
    assert.strictEqual(written.size, 4)
    assert.deepStrictEqual([...written.without(listed)], [3, 19])
    assert.deepStrictEqual([...listed.without(written)], [12])
    assert.isFalse(written.has(20))
  })

  it("names missing and extra blocks, the first few of each, and nothing when the sets are equal", () => {
    // Prepare
    const written = new BlockSet(100)
    const listed = new BlockSet(100)
    for (let index = 0; index < 30; index += 1) written.add(index)
    for (let index = 5; index < 30; index += 1) listed.add(index)
    listed.add(77)
    const same = new BlockSet(100)
    same.add(5)
    const alsoSame = new BlockSet(100)
    alsoSame.add(5)
    // Act
    const problems = blockSetProblems(written, listed, "snap-1", 3)
    // Assess
    assert.deepStrictEqual(problems, [
      "5 blocks written to snap-1 are missing from its block list: 0, 1, 2 and 2 more",
      "1 blocks in snap-1's block list were never written: 77"
    ])
    assert.deepStrictEqual(blockSetProblems(same, alsoSame, "snap-2"), [])
  })
})
