import { execFileSync } from "node:child_process"
import { createHash, randomBytes } from "node:crypto"
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, assert, describe, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import { TarScanner } from "@backup-actions/archive"
import type { ChunkSource } from "./archive-pipeline"
import { CHUNK_BYTES } from "./ebs-direct-source"
import { concatSources, rawMemberOffsets, rawMembersSource } from "./raw-members"

const scratch = mkdtempSync(join(tmpdir(), "raw-members-test-"))
afterAll(() => rmSync(scratch, { recursive: true, force: true }))

/** Everything a source gives, holes as zeros, and how many chunks were holes. */
const drain = <E>(source: ChunkSource<E>) =>
  Effect.gen(function* () {
    const pieces: Array<Buffer> = []
    let holes = 0
    while (true) {
      const job = yield* source.pull
      if (Option.isNone(job)) break
      const { bytes } = yield* job.value.produce
      if (Option.isNone(bytes)) holes += 1
      pieces.push(Option.isSome(bytes) ? Buffer.from(bytes.value) : Buffer.alloc(job.value.inputBytes))
      if (job.value.release !== undefined) yield* job.value.release
    }
    return { bytes: Buffer.concat(pieces), holes }
  })

const sha256 = (bytes: Buffer): string => createHash("sha256").update(bytes).digest("hex")

describe("raw disk ranges as tar members", () => {
  it.scoped("are their exact bytes, hashed in order, zeros passed as holes, and a tar follows them in one archive stock tar reads", () =>
    Effect.gen(function* () {
      // Prepare: a "disk" of data, a run of zeros longer than a chunk, more data; and a tar to follow
      const disk = join(scratch, "disk.bin")
      const first = randomBytes(CHUNK_BYTES + 1000)
      const second = Buffer.concat([Buffer.alloc(2 * CHUNK_BYTES), randomBytes(777)])
      writeFileSync(disk, Buffer.concat([randomBytes(4096), first, second]))
      const tree = join(scratch, "tree")
      mkdirSync(tree)
      writeFileSync(join(tree, "after.txt"), "from GNU tar\n")
      const hashes = new Map<string, string>()
      let tarOpened = false
      const ranges = [
        { member: "p1.img", device: disk, offset: 4096, bytes: first.length },
        { member: "lvm/vg/swap.img", device: disk, offset: 4096 + first.length, bytes: second.length }
      ]
      const attributes = { mode: 0o600, uid: 0, gid: 0, mtimeSeconds: 1_767_323_045 }
      // Act
      const source = yield* concatSources([
        rawMembersSource(
          ranges,
          attributes,
          2,
          (member, sha) => hashes.set(member, sha)
        ),
        Effect.sync(() => (tarOpened = true)).pipe(
          Effect.zipRight(
            Effect.sync((): ChunkSource<never> => {
              const tar = execFileSync("tar", ["--create", "--file=-", "--format=posix", `--directory=${tree}`, "after.txt"])
              let given = false
              return {
                pull: Effect.sync(() => {
                  if (given) return Option.none()
                  given = true
                  return Option.some({ inputBytes: tar.length, produce: Effect.succeed({ bytes: Option.some(tar), manifestLines: [] }) })
                })
              }
            })
          )
        )
      ])
      const openedBeforePull = tarOpened
      const { bytes, holes } = yield* drain(source)
      // Assess
      assert.isFalse(openedBeforePull)
      assert.deepStrictEqual(Object.fromEntries(hashes), { "p1.img": sha256(first), "lvm/vg/swap.img": sha256(second) })
      assert.isAtLeast(holes, 2)
      const archive = join(scratch, "archive.tar")
      writeFileSync(archive, bytes)
      const target = join(scratch, "extracted")
      mkdirSync(target)
      execFileSync("tar", ["-xf", archive, "-C", target])
      assert.isTrue(readFileSync(join(target, "p1.img")).equals(first))
      assert.isTrue(readFileSync(join(target, "lvm", "vg", "swap.img")).equals(second))
      assert.strictEqual(readFileSync(join(target, "after.txt"), "utf8"), "from GNU tar\n")
      // Where the manifest says each member starts, and the tar after them, is where a scan finds it.
      const found = new Map<string, number>()
      const scanner = new TarScanner((entry) => found.set(entry.path, entry.headerOffset))
      scanner.push(bytes)
      const offsets = rawMemberOffsets(ranges, attributes)
      assert.deepStrictEqual(Object.fromEntries(found), { ...Object.fromEntries(offsets.offsets), "after.txt": offsets.end })
    })
  )
})
