import { execFileSync } from "node:child_process"
import { closeSync, linkSync, mkdirSync, mkdtempSync, openSync, rmSync, symlinkSync, utimesSync, writeFileSync, writeSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { Effect, Exit } from "effect"
import { TarScanner, compareDirectoryWithManifest, type TarEntry, type TreeEntry } from "@backup-actions/archive"
import { treeManifestOfTar } from "./tree-manifest"
import { TAR_ARGS } from "./volume"

const scratch = mkdtempSync(join(tmpdir(), "tree-manifest-test-"))
afterAll(() => rmSync(scratch, { recursive: true, force: true }))

const tree = join(scratch, "tree")
let tar: Buffer

/** The manifest made from `bytes` fed in pieces of `piece` bytes, its lines parsed, and its totals. */
const manifestOf = (bytes: Buffer, piece: number, spool: string) =>
  Effect.runPromiseExit(
    Effect.scoped(
      Effect.gen(function* () {
        const made = yield* treeManifestOfTar(tree, join(scratch, spool))
        for (let at = 0; at < bytes.length; at += piece) made.onRead(bytes.subarray(at, at + piece))
        const totals = yield* made.finish
        return { totals, entries: [...made.lines()].map((line) => JSON.parse(line) as TreeEntry) }
      })
    )
  )

beforeAll(() => {
  mkdirSync(join(tree, "dir", "deeper"), { recursive: true })
  writeFileSync(join(tree, "dir", "plain.txt"), "plain content\n")
  linkSync(join(tree, "dir", "plain.txt"), join(tree, "hard-link.txt"))
  symlinkSync("dir/plain.txt", join(tree, "symlink"))
  writeFileSync(join(tree, "dir", "deeper", `${"a-long-name-".repeat(12)}.txt`), "long\n")
  writeFileSync(join(tree, "dir", "naïve café ☕.txt"), "unicode\n")
  writeFileSync(join(tree, "empty"), "")
  execFileSync("mkfifo", [join(tree, "fifo")], { timeout: 10_000 })
  // A socket, which tar does not archive (it says so and goes on).
  execFileSync("python3", ["-c", "import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])", join(tree, "socket")], { timeout: 10_000 })
  const sparse = openSync(join(tree, "sparse.img"), "w")
  writeSync(sparse, Buffer.from("far in"), 0, undefined, 5 * 1024 * 1024)
  closeSync(sparse)
  execFileSync("truncate", ["-s", "16M", join(tree, "sparse.img")], { timeout: 10_000 })
  // A time with a fraction of a second, which the manifest keeps to the millisecond.
  utimesSync(join(tree, "dir", "plain.txt"), 1_700_000_000.987654, 1_700_000_000.987654)
  tar = execFileSync("tar", [...TAR_ARGS(tree)], { maxBuffer: 64 * 1024 * 1024, timeout: 60_000 })
})

describe("a file-level manifest made from the tar stream", () => {
  it("lists every entry on disk but the socket tar skips, each matching the disk in type, mode, owner, size, time, content and link", async () => {
    // Prepare
    const onDisk = execFileSync("find", [tree, "-not", "-type", "s"], { encoding: "utf8", timeout: 10_000 }).trim().split("\n").length
    // Act
    const made = await manifestOf(tar, 4096, "whole.ndjson")
    // Assess
    assert.isTrue(Exit.isSuccess(made))
    if (!Exit.isSuccess(made)) return
    const { entries, totals } = made.value
    assert.strictEqual(entries.length, onDisk)
    assert.strictEqual(totals.entries, onDisk)
    const checked = await compareDirectoryWithManifest(tree, entries, { owners: true })
    assert.deepStrictEqual(checked.problems, [])
    const byPath = new Map(entries.map((entry) => [entry.path, entry]))
    assert.strictEqual(byPath.get("hard-link.txt")?.linkOf, "dir/plain.txt")
    assert.strictEqual(byPath.get("hard-link.txt")?.size, 14)
    assert.strictEqual(byPath.get("symlink")?.target, "dir/plain.txt")
    assert.strictEqual(byPath.get("fifo")?.type, "other")
    assert.isFalse(byPath.has("socket"))
    assert.strictEqual(byPath.get("sparse.img")?.size, 16 * 1024 * 1024)
    assert.strictEqual(byPath.get("dir/plain.txt")?.mtime, "2023-11-14T22:13:20.987Z")
    // The hard link's bytes count once: plain.txt, the long name, the unicode name, the sparse file's full size.
    assert.strictEqual(totals.fileBytes, "plain content\n".length + "long\n".length + "unicode\n".length + 16 * 1024 * 1024)
  })

  it("gives each entry's offset in the tar, where a reader of the tar alone finds that entry", async () => {
    // Prepare
    const made = await manifestOf(tar, 65536, "offsets.ndjson")
    assert.isTrue(Exit.isSuccess(made))
    if (!Exit.isSuccess(made)) return
    // Act: scan the tar from each entry's offset until the first entry it reports
    const firstFrom = (offset: number): TarEntry | undefined => {
      let first: TarEntry | undefined
      const scanner = new TarScanner((entry) => (first ??= entry))
      for (let at = offset; first === undefined && at < tar.length; at += 4096) scanner.push(tar.subarray(at, at + 4096))
      return first
    }
    // Assess
    for (const entry of made.value.entries) {
      assert.isDefined(entry.offset, entry.path)
      assert.strictEqual(firstFrom(entry.offset ?? -1)?.path, entry.path)
    }
  })

  it("is the same fed one byte at a time as fed whole", async () => {
    // Prepare
    const whole = await manifestOf(tar, tar.length, "fed-whole.ndjson")
    // Act
    const bytewise = await manifestOf(tar, 1, "fed-bytewise.ndjson")
    // Assess
    assert.isTrue(Exit.isSuccess(whole) && Exit.isSuccess(bytewise))
    if (Exit.isSuccess(whole) && Exit.isSuccess(bytewise)) assert.deepStrictEqual(bytewise.value, whole.value)
  })

  it("fails, naming tar, when the stream ends in the middle of an entry", async () => {
    // Prepare
    const cut = tar.subarray(0, tar.indexOf("plain content") + 4)
    // Act
    const made = await manifestOf(cut, 65536, "cut.ndjson")
    // Assess
    assert.isTrue(Exit.isFailure(made))
    assert.match(String(Exit.isFailure(made) ? made.cause : ""), /its output cannot be listed in the manifest: .*ends in the middle of an entry/)
  })
})
