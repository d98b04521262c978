import { execFileSync } from "node:child_process"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, assert, describe, it } from "@effect/vitest"
import { sha256OfFile } from "./file-manifest"

const scratch = mkdtempSync(join(tmpdir(), "file-manifest-test-"))
afterAll(() => rmSync(scratch, { recursive: true, force: true }))

describe("hashing a file for a file-level manifest", () => {
  it("gives the lowercase hex SHA-256 of a small file", async () => {
    // Prepare
    const file = join(scratch, "abc.txt")
    writeFileSync(file, "abc")
    // Act
    const digest = await sha256OfFile(file)
    // Assess: the FIPS 180-2 test vector for "abc"
    assert.strictEqual(digest, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
  })

  it("hashes every read of a file larger than one read, as sha256sum does", async () => {
    // Prepare: 3.5 MiB of varied bytes, more than three reads of one MiB
    const file = join(scratch, "large.bin")
    writeFileSync(file, Buffer.from(Array.from({ length: 3.5 * 1024 * 1024 }, (_, index) => (index * 31 + (index >> 11)) % 251)))
    // Act
    const digest = await sha256OfFile(file)
    // Assess: against an independent tool
    assert.strictEqual(digest, execFileSync("sha256sum", [file]).toString().split(" ")[0])
  })

  it("rejects when the file can't be read", async () => {
    // Prepare
    const missing = join(scratch, "missing.bin")
    // Act
    const failure = await sha256OfFile(missing).then(
      () => undefined,
      (error: unknown) => error
    )
    // Assess
    assert.instanceOf(failure, Error)
    assert.include(String(failure), "ENOENT")
  })
})
