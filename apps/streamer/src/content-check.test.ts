import { execFileSync } from "node:child_process"
import { createHash, randomBytes } from "node:crypto"
import { closeSync, linkSync, mkdirSync, mkdtempSync, openSync, rmSync, symlinkSync, writeFileSync, writeSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import type { RawRange, TreeEntry } from "@backup-actions/archive"
import { type ContentCheck, NAMED_PROBLEMS, rawImageContentCheck, streamContentCheck, summarizeProblems, tarContentCheck } from "./content-check"
import { treeManifestOfTar } from "./tree-manifest"
import { TAR_ARGS } from "./volume"

const scratch = mkdtempSync(join(tmpdir(), "content-check-test-"))
afterAll(() => rmSync(scratch, { recursive: true, force: true }))

const sha256Hex = (bytes: Buffer): string => createHash("sha256").update(bytes).digest("hex")
const sha256Base64 = (bytes: Buffer): string => createHash("sha256").update(bytes).digest("base64")

/** Feeds all of `bytes` in pieces of `piece` bytes (the last one shorter), then finishes. */
const checkAll = (check: ContentCheck, bytes: Buffer, piece: number = bytes.length): ReadonlyArray<string> => {
  for (let at = 0; at < bytes.length; at += Math.max(1, piece)) check.update(bytes.subarray(at, at + Math.max(1, piece)))
  return check.finish()
}

/** Written once into the large file, so that its bytes can be found in the tar. */
const MARKER = "content-check-marker-5b1e9d4c-inside-the-large-file"
const LARGE_PATH = "dir/nested/large.bin"
const large = Buffer.concat([randomBytes(100_000), Buffer.from(MARKER), randomBytes(300 * 1024 - 100_000 - MARKER.length)])

let tree: string
let tar: Buffer
let manifest: ReadonlyArray<TreeEntry>
/** Where the marker starts in the tar's bytes. */
let markerAt: number

beforeAll(async () => {
  tree = join(scratch, "tree")
  mkdirSync(join(tree, "dir", "nested"), { recursive: true })
  writeFileSync(join(tree, LARGE_PATH), large)
  writeFileSync(join(tree, "dir", "plain.txt"), "plain content\n")
  linkSync(join(tree, "dir", "plain.txt"), join(tree, "hard-link.txt"))
  symlinkSync("dir/plain.txt", join(tree, "symlink"))
  const sparse = join(tree, "sparse.img")
  execFileSync("truncate", ["-s", "32M", sparse], { timeout: 30_000 })
  const descriptor = openSync(sparse, "r+")
  writeSync(descriptor, Buffer.from("near the start"), 0, undefined, 4096)
  writeSync(descriptor, Buffer.from("far into the file"), 0, undefined, 20 * 1024 * 1024 + 123)
  closeSync(descriptor)
  tar = execFileSync("tar", [...TAR_ARGS(tree)], { maxBuffer: 256 * 1024 * 1024, timeout: 60_000 })
  manifest = await Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const made = yield* treeManifestOfTar(tree, join(scratch, "manifest.ndjson"))
        made.onRead(tar)
        yield* made.finish
        return [...made.lines()].map((line) => JSON.parse(line) as TreeEntry)
      })
    )
  )
  markerAt = tar.indexOf(MARKER)
  assert.isAtLeast(markerAt, 0)
  assert.strictEqual(tar.lastIndexOf(MARKER), markerAt)
})

describe("a tar checked against its file manifest", () => {
  for (const piece of [1000, 513, Number.POSITIVE_INFINITY]) {
    it(`finds no problem in an intact tar fed ${Number.isFinite(piece) ? `${piece} bytes at a time` : "whole"}`, () => {
      // Prepare
      const check = tarContentCheck(() => manifest, undefined)
      // Act
      const problems = checkAll(check, tar, Math.min(piece, tar.length))
      // Assess
      assert.deepStrictEqual(problems, [])
    })
  }

  it("is made of a tree that holds a nested directory, a symlink, a hard link and a sparse file stored sparse", () => {
    // Prepare
    const byPath = new Map(manifest.map((entry) => [entry.path, entry]))
    // Act
    const linked = [byPath.get("dir/plain.txt")?.linkOf, byPath.get("hard-link.txt")?.linkOf].filter((path) => path !== undefined)
    // Assess
    assert.strictEqual(byPath.get("dir/nested")?.type, "directory")
    assert.strictEqual(byPath.get("symlink")?.target, "dir/plain.txt")
    assert.strictEqual(linked.length, 1)
    assert.strictEqual(byPath.get("sparse.img")?.size, 32 * 1024 * 1024)
    assert.isBelow(tar.length, 4 * 1024 * 1024)
  })

  for (const piece of [1000, 513, Number.POSITIVE_INFINITY]) {
    it(`names the file and its manifest SHA-256 when one byte of its content changed, fed ${Number.isFinite(piece) ? `${piece} bytes at a time` : "whole"}`, () => {
      // Prepare
      const changed = Buffer.from(tar)
      changed[markerAt + 7] = (changed[markerAt + 7] ?? 0) ^ 0xff
      const check = tarContentCheck(() => manifest, undefined)
      // Act
      const problems = checkAll(check, changed, Math.min(piece, changed.length))
      // Assess
      assert.strictEqual(problems.length, 1)
      assert.include(problems[0], LARGE_PATH)
      assert.include(problems[0], sha256Hex(large))
    })
  }

  it("reports a truncated tar as a problem without throwing, wherever it was cut", () => {
    // Prepare: every cut before the last byte that is not padding loses part of an entry
    let lastData = tar.length - 1
    while (lastData > 0 && tar[lastData] === 0) lastData -= 1
    const cuts = [0, 100, 512, markerAt, markerAt + 1, lastData]
    for (let cut = 0; cut <= lastData; cut += 512 * 37 + 1) cuts.push(cut)
    for (let cut = 0; cut <= lastData; cut += 512 * 41) cuts.push(cut)
    for (const cut of cuts) {
      const check = tarContentCheck(() => manifest, undefined)
      // Act
      let problems: ReadonlyArray<string> = []
      assert.doesNotThrow(() => (problems = checkAll(check, tar.subarray(0, cut), 1000)))
      // Assess
      assert.isAbove(problems.length, 0, `cut at ${cut}`)
    }
  })

  it("reports random bytes as exactly one unreadable-tar problem, and update never throws", () => {
    // Prepare
    const garbage = randomBytes(64 * 1024)
    const check = tarContentCheck(() => manifest, undefined)
    // Act
    assert.doesNotThrow(() => {
      for (let at = 0; at < garbage.length; at += 1000) check.update(garbage.subarray(at, at + 1000))
    })
    const problems = check.finish()
    // Assess
    assert.strictEqual(problems.length, 1)
    assert.isTrue(problems[0]?.startsWith("the tar cannot be read: "), problems[0])
  })

  it("names a file the manifest lists but the tar lacks", () => {
    // Prepare
    const absent: TreeEntry = { path: "dir/absent.txt", type: "file", mode: "0644", uid: 0, gid: 0, size: 4, mtime: "2026-01-02T03:04:05.000Z", sha256: sha256Hex(Buffer.from("gone")) }
    const check = tarContentCheck(() => [...manifest, absent], undefined)
    // Act
    const problems = checkAll(check, tar, 1000)
    // Assess
    assert.strictEqual(problems.length, 1)
    assert.include(problems[0], "dir/absent.txt")
  })

  it("reports a manifest that cannot be read as exactly one problem, and update never throws", () => {
    // Prepare: a manifest whose second line does not decode
    const check = tarContentCheck(
      () => ({
        *[Symbol.iterator]() {
          yield* manifest.slice(0, 1)
          throw new Error("manifest line 3: not an entry")
        }
      }),
      undefined
    )
    // Act
    assert.doesNotThrow(() => {
      for (let at = 0; at < tar.length; at += 1000) check.update(tar.subarray(at, at + 1000))
    })
    const problems = check.finish()
    // Assess
    assert.deepStrictEqual(problems, ["the tar cannot be compared with its manifest: manifest line 3: not an entry"])
  })

  it("names an entry the tar holds where the manifest lists another", () => {
    // Prepare: the manifest without its second entry
    const check = tarContentCheck(() => [manifest[0] as TreeEntry, ...manifest.slice(2)], undefined)
    // Act
    const problems = checkAll(check, tar, 1000)
    // Assess
    assert.isAbove(problems.length, 0)
    assert.include(problems[0], `${manifest[1]?.path}: in the archive where the manifest lists ${manifest[2]?.path}`)
  })

  it("names an entry whose offset in the archive is not the one the manifest gives", () => {
    // Prepare
    const moved = manifest.map((entry) => (entry.path === "symlink" ? { ...entry, offset: (entry.offset ?? 0) + 512 } : entry))
    const check = tarContentCheck(() => moved, undefined)
    // Act
    const problems = checkAll(check, tar, 1000)
    // Assess
    assert.strictEqual(problems.length, 1)
    assert.match(problems[0] ?? "", /^symlink: starts at byte \d+ of the archive, the manifest says \d+$/)
  })

  it("names a hard link the manifest lists as a file of its own", () => {
    // Prepare
    const unlinked = manifest.map((entry) => (entry.linkOf === undefined ? entry : { ...entry, linkOf: undefined }))
    const check = tarContentCheck(() => unlinked, undefined)
    // Act
    const problems = checkAll(check, tar, 1000)
    // Assess
    assert.deepStrictEqual(problems, ["hard-link.txt: a hard link of dir/plain.txt, the manifest says a file of its own"])
  })
})

describe("a raw image checked against its ranges", () => {
  const IMAGE_BYTES = 64 * 1024
  const first = { offset: 4096, bytes: randomBytes(1000) }
  const second = { offset: 32 * 1024, bytes: randomBytes(8192) }
  const image = Buffer.alloc(IMAGE_BYTES)
  first.bytes.copy(image, first.offset)
  second.bytes.copy(image, second.offset)
  const ranges: ReadonlyArray<RawRange> = [first, second].map(({ offset, bytes }) => ({ offset, length: bytes.length, sha256: sha256Base64(bytes) }))

  for (const piece of [1000, IMAGE_BYTES]) {
    it(`finds no problem in an intact image fed ${piece} bytes at a time`, () => {
      // Prepare
      const check = rawImageContentCheck(ranges, IMAGE_BYTES)
      // Act
      const problems = checkAll(check, image, piece)
      // Assess
      assert.deepStrictEqual(problems, [])
    })
  }

  it("names the range in which a byte changed", () => {
    // Prepare
    const changed = Buffer.from(image)
    changed[second.offset + 5000] = (changed[second.offset + 5000] ?? 0) ^ 0x01
    const check = rawImageContentCheck(ranges, IMAGE_BYTES)
    // Act
    const problems = checkAll(check, changed, 1000)
    // Assess
    assert.strictEqual(problems.length, 1)
    assert.include(problems[0], `offset ${second.offset}`)
  })

  it("names a byte that is not zero outside every range", () => {
    // Prepare
    const changed = Buffer.from(image)
    changed[50_000] = 7
    const check = rawImageContentCheck(ranges, IMAGE_BYTES)
    // Act
    const problems = checkAll(check, changed, 1000)
    // Assess
    assert.strictEqual(problems.length, 1)
    assert.include(problems[0], "byte 50000")
  })

  it("names an image shorter than its manifest says", () => {
    // Prepare
    const check = rawImageContentCheck(ranges, IMAGE_BYTES)
    // Act
    const problems = checkAll(check, image.subarray(0, 50_000), 1000)
    // Assess
    assert.strictEqual(problems.length, 1)
    assert.include(problems[0], "50000 bytes")
    assert.include(problems[0], String(IMAGE_BYTES))
  })

  it("reports ranges that cannot be read as exactly one problem, and neither update nor finish throws", () => {
    // Prepare: the second range's line does not decode
    const broken: Iterable<RawRange> = {
      *[Symbol.iterator]() {
        yield* ranges.slice(0, 1)
        throw new Error("manifest line 3: not a range")
      }
    }
    const check = rawImageContentCheck(broken, IMAGE_BYTES)
    // Act
    let problems: ReadonlyArray<string> = []
    assert.doesNotThrow(() => (problems = checkAll(check, image, 1000)))
    // Assess
    assert.strictEqual(problems.length, 1)
    assert.isTrue(problems[0]?.startsWith("the image cannot be compared with its manifest: "), problems[0])
  })
})

describe("a stream checked against its source's SHA-256 and size", () => {
  const written = randomBytes(10_000)
  const expected = { sha256: sha256Hex(written), bytes: written.length }

  it("finds no problem when the same bytes are read back", () => {
    // Prepare
    const check = streamContentCheck(expected)
    // Act
    const problems = checkAll(check, written, 777)
    // Assess
    assert.deepStrictEqual(problems, [])
  })

  it("names the SHA-256 read back when other bytes of the same length are read back", () => {
    // Prepare
    const other = Buffer.from(written)
    other[1234] = (other[1234] ?? 0) ^ 0x80
    const check = streamContentCheck(expected)
    // Act
    const problems = checkAll(check, other, 777)
    // Assess
    assert.deepStrictEqual(problems, [`SHA-256 ${sha256Hex(other)} read back, ${expected.sha256} was written`])
  })

  it("names the byte counts when a stream of another length is read back", () => {
    // Prepare
    const check = streamContentCheck(expected)
    // Act
    const problems = checkAll(check, written.subarray(0, 9_999), 777)
    // Assess
    assert.deepStrictEqual(problems, [`9999 bytes read back, ${written.length} were written`])
  })
})

describe("problems summarized in one line", () => {
  const problems = (count: number) => Array.from({ length: count }, (_, index) => `problem ${index + 1}`)

  it("joins a few problems with semicolons", () => {
    // Prepare
    const few = problems(NAMED_PROBLEMS)
    // Act
    const line = summarizeProblems(few)
    // Assess
    assert.strictEqual(line, "problem 1; problem 2; problem 3; problem 4; problem 5")
  })

  it("names the first few of many problems and counts the rest", () => {
    // Prepare
    const many = problems(NAMED_PROBLEMS + 3)
    // Act
    const line = summarizeProblems(many)
    // Assess
    assert.strictEqual(line, "problem 1; problem 2; problem 3; problem 4; problem 5; and 3 more")
  })

  it("is empty when there is no problem", () => {
    // Prepare
    const none = problems(0)
    // Act
    const line = summarizeProblems(none)
    // Assess
    assert.strictEqual(line, "")
  })
})
