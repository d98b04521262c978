import { execFileSync } from "node:child_process"
import { createHash } from "node:crypto"
import { closeSync, linkSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, symlinkSync, writeFileSync, writeSync, chmodSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import type { TreeEntry } from "./manifest"
import { manifestEntryOf } from "./tar-manifest"
import { TarFormatError, TarScanner, normalizeTarPath, parsePaxRecords, type TarEntry } from "./tar-scan"
import { compareDirectoryWithManifest, compareTarWithManifest } from "./tree-check"

let scratch: string
let tree: string
let archive: Buffer
const longName = `${"deep-directory-name/".repeat(6)}${"a-file-name-longer-than-the-ustar-field-".repeat(3)}.txt`

const sha256 = (bytes: Buffer | string) => createHash("sha256").update(bytes).digest("hex")

/** Scans a whole archive fed in pieces of the given size. */
const scan = (bytes: Buffer, piece: number): Map<string, TarEntry> => {
  const entries = new Map<string, TarEntry>()
  const scanner = new TarScanner((entry) => entries.set(entry.path, entry))
  for (let at = 0; at < bytes.length; at += piece) scanner.push(bytes.subarray(at, at + piece))
  scanner.end()
  return entries
}

/** The manifest the streamer writes for a scanned tar. */
const manifestOf = (entries: ReadonlyMap<string, TarEntry>): ReadonlyArray<TreeEntry> =>
  [...entries.values()].map((entry) => manifestEntryOf(entry, (path) => entries.get(path)?.size ?? 0))

beforeAll(() => {
  scratch = mkdtempSync(join(tmpdir(), "tar-scan-test-"))
  tree = join(scratch, "tree")
  mkdirSync(join(tree, "dir"), { recursive: true })
  writeFileSync(join(tree, "dir", "plain.txt"), "plain content\n")
  chmodSync(join(tree, "dir", "plain.txt"), 0o640)
  linkSync(join(tree, "dir", "plain.txt"), join(tree, "hard.txt"))
  symlinkSync("dir/plain.txt", join(tree, "link"))
  mkdirSync(join(tree, ...longName.split("/").slice(0, -1)), { recursive: true })
  writeFileSync(join(tree, longName), "a long name\n")
  const sparse = openSync(join(tree, "sparse.img"), "w")
  writeSync(sparse, Buffer.from("start"), 0, undefined, 0)
  writeSync(sparse, Buffer.from("middle"), 0, undefined, 3 * 1024 * 1024)
  closeSync(sparse)
  execFileSync("truncate", ["-s", "8M", join(tree, "sparse.img")])
  execFileSync("tar", ["--create", `--file=${join(scratch, "tree.tar")}`, `--directory=${tree}`, "--format=posix", "--sparse", "--numeric-owner", "--sort=name", "."])
  archive = readFileSync(join(scratch, "tree.tar"))
})

afterAll(() => rmSync(scratch, { recursive: true, force: true }))

describe("the tar scanner", () => {
  it("reads GNU tar's POSIX archive: long names, links, and a sparse file hashed with its holes", () => {
    // Act
    const entries = scan(archive, 700)
    // Assess
    const sparse = Buffer.alloc(8 * 1024 * 1024)
    sparse.write("start", 0)
    sparse.write("middle", 3 * 1024 * 1024)
    const sparseEntry = entries.get("sparse.img")
    assert.deepStrictEqual({ size: sparseEntry?.size, sha256: sparseEntry?.sha256 }, { size: sparse.length, sha256: sha256(sparse) })
    assert.strictEqual(entries.get(longName)?.sha256, sha256("a long name\n"))
    assert.strictEqual(entries.get("link")?.type, "symlink")
    assert.strictEqual(entries.get("link")?.linkTarget, "dir/plain.txt")
    const linked = [entries.get("hard.txt"), entries.get("dir/plain.txt")].map((entry) => entry?.type).sort()
    assert.deepStrictEqual(linked, ["file", "hardlink"])
    assert.strictEqual(entries.get(".")?.type, "directory")
  })

  it("gives the same entries whatever the pieces the archive arrives in", () => {
    // Act
    const small = scan(archive, 1)
    const large = scan(archive, archive.length)
    // Assess
    assert.deepStrictEqual([...small.entries()], [...large.entries()])
  })

  it("refuses a header whose checksum is wrong, naming where", () => {
    // Prepare
    const damaged = Buffer.from(archive)
    damaged[1024 + 10] = (damaged[1024 + 10] ?? 0) ^ 0x20
    // Act
    const error = (() => {
      try {
        scan(damaged, 4096)
        return undefined
      } catch (caught) {
        return caught
      }
    })()
    // Assess
    assert.instanceOf(error, TarFormatError)
    assert.match(String(error), /the tar header at tar byte 1024 has a bad checksum/)
  })

  it("refuses an archive that ends in the middle of an entry", () => {
    // Prepare
    const scanner = new TarScanner(() => undefined)
    scanner.push(archive.subarray(0, 1500))
    // Act
    const ended = () => scanner.end()
    // Assess
    assert.throws(ended, /ends in the middle of an entry/)
  })

  it("normalizes paths as the manifest writes them, and reads pax records", () => {
    // Act
    const paths = ["./", "./a/b/", "a", "."].map(normalizeTarPath)
    const records = parsePaxRecords(Buffer.from("18 path=a/é/long\n12 uid=1001\n"))
    // Assess
    assert.deepStrictEqual(paths, [".", "a/b", "a", "."])
    assert.deepStrictEqual([...records.entries()], [["path", "a/é/long"], ["uid", "1001"]])
  })
})

describe("the tree checks", () => {
  it("finds an archive equal to its manifest, hard links either way round", () => {
    // Prepare
    const entries = scan(archive, 65536)
    const manifest = manifestOf(entries)
    // Act
    const problems = compareTarWithManifest(entries, manifest)
    // Assess
    assert.deepStrictEqual(problems, [])
  })

  it("names a changed file, a missing entry and an extra one", () => {
    // Prepare
    const entries = scan(archive, 65536)
    const manifest = manifestOf(entries).map((entry) => (entry.path === "dir/plain.txt" || entry.path === "hard.txt") && entry.sha256 !== undefined ? { ...entry, sha256: "0".repeat(64) } : entry)
    const withMissing = [...manifest.filter((entry) => entry.path !== "link"), { ...manifest[0]!, path: "not-archived", type: "file" as const, size: 1 }]
    // Act
    const problems = compareTarWithManifest(entries, withMissing)
    // Assess
    assert.isTrue(problems.some((problem) => /: SHA-256 \S+ differs from the manifest's 0{64}$/.test(problem)))
    assert.include(problems, "not-archived: listed in the manifest but missing")
    assert.include(problems, "link: in the archive but not in the manifest")
  })

  it("checks an extracted directory against the manifest, and names a mode that changed", async () => {
    // Prepare
    const entries = scan(archive, 65536)
    const manifest = manifestOf(entries)
    const extracted = join(scratch, "extracted")
    mkdirSync(extracted)
    execFileSync("tar", ["--extract", "--file", join(scratch, "tree.tar"), "--directory", extracted, "--numeric-owner", "--preserve-permissions"])
    // Act
    const clean = await compareDirectoryWithManifest(extracted, manifest, { owners: true })
    chmodSync(join(extracted, "dir", "plain.txt"), 0o600)
    const changed = await compareDirectoryWithManifest(extracted, manifest, { owners: true })
    // Assess
    assert.deepStrictEqual(clean.problems, [])
    assert.strictEqual(clean.checked, manifest.length)
    assert.include(changed.problems, "dir/plain.txt: mode 0600, the manifest says 0640")
  })
})
