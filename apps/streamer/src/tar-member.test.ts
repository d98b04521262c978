import { execFileSync, spawnSync } from "node:child_process"
import { randomBytes } from "node:crypto"
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, assert, describe, it } from "@effect/vitest"
import { paddingAfter, regularFileHeader } from "./tar-member"

const scratch = mkdtempSync(join(tmpdir(), "tar-member-test-"))
afterAll(() => rmSync(scratch, { recursive: true, force: true }))

/** A tar of the members given, as the streamer writes them, then the two zero blocks that end an archive. */
const tarOf = (members: ReadonlyArray<{ readonly path: string; readonly data: Buffer; readonly mtimeSeconds: number }>): Buffer =>
  Buffer.concat([
    ...members.flatMap((member) => [
      regularFileHeader({ path: member.path, size: member.data.length, mode: 0o600, uid: 0, gid: 0, mtimeSeconds: member.mtimeSeconds }),
      member.data,
      Buffer.alloc(paddingAfter(member.data.length))
    ]),
    Buffer.alloc(1024)
  ])

describe("the tar members the streamer writes itself", () => {
  it("extract with stock GNU tar to the exact bytes, path, mode and time, long and non-ASCII paths included", () => {
    // Prepare
    const longPath = `lvm/${"volume-group-".repeat(6)}/logical-volume-é文件.img`
    const members = [
      { path: "p3.img", data: randomBytes(1_000_003), mtimeSeconds: 1_767_323_045 },
      { path: longPath, data: randomBytes(512), mtimeSeconds: 1_767_323_046 },
      { path: "empty.img", data: Buffer.alloc(0), mtimeSeconds: 1_767_323_047 }
    ]
    const archive = join(scratch, "members.tar")
    writeFileSync(archive, tarOf(members))
    const target = join(scratch, "extracted")
    mkdirSync(target)
    // Act
    execFileSync("tar", ["-xpf", archive, "-C", target])
    // Assess
    for (const member of members) {
      const path = join(target, member.path)
      assert.isTrue(readFileSync(path).equals(member.data), member.path)
      const stats = statSync(path)
      assert.strictEqual(stats.mode & 0o7777, 0o600, member.path)
      assert.strictEqual(Math.floor(stats.mtimeMs / 1000), member.mtimeSeconds, member.path)
    }
  })

  it("give sizes beyond the 8 GiB a ustar header holds exactly, as GNU tar lists them", () => {
    // Prepare: the header of a 10 GiB member, and only a little of its data
    const size = 10 * 1024 ** 3 + 7
    const header = regularFileHeader({ path: "p9.img", size, mode: 0o600, uid: 0, gid: 0, mtimeSeconds: 1_767_323_045 })
    // Act: tar lists the entry, then finds the archive ends early
    const listed = spawnSync("tar", ["-tvf", "-"], { input: Buffer.concat([header, Buffer.alloc(4096)]) })
    // Assess
    assert.match(listed.stdout.toString(), new RegExp(`^-rw------- \\S+\\s+${size} .* p9\\.img$`, "m"))
  })

  it("pad every member to the next 512-byte block", () => {
    assert.deepStrictEqual([0, 1, 511, 512, 513].map(paddingAfter), [0, 511, 1, 0, 511])
  })
})
