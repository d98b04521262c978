import { spawn } from "node:child_process"
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { DEVICE_RECORDS, SCRATCH, mountsBelow, sweepLeftovers, unescapeMountPath } from "./leftovers"
import { attach, detach, filesystemImage, gptDisk, loopsOver, mountsUnder, tool } from "./test-disks"

const scratch = mkdtempSync(join(tmpdir(), "leftovers-test-"))
afterAll(() => rmSync(scratch, { recursive: true, force: true }))

/** Runs test-hold-mounts.ts over the device, waits until it has mounted, then kills it with SIGKILL. */
const killWhileMounted = (device: string, workDir: string) =>
  Effect.promise(
    () =>
      new Promise<number>((done, fail) => {
        const child = spawn(process.execPath, ["--import", "tsx", join(import.meta.dirname, "test-hold-mounts.ts"), device, workDir], { stdio: ["ignore", "pipe", "pipe"] })
        let errors = ""
        child.stderr.on("data", (data: Buffer) => (errors += data.toString()))
        let filesystems: number | undefined
        child.stdout.once("data", (data: Buffer) => {
          filesystems = (JSON.parse(data.toString()) as { filesystems: number }).filesystems
          child.kill("SIGKILL")
        })
        child.once("exit", (code) =>
          filesystems === undefined ? fail(new Error(`the mounting process ended (${code}) before it mounted: ${errors}`)) : done(filesystems)
        )
      })
  )

describe("the mount table as the sweep reads it", () => {
  it("undoes the octal escapes of a mount point and lists the deepest mounts first, only at or below the directory", () => {
    // Prepare
    const mountinfo = [
      "36 35 98:0 / /work/disk-a rw - ext4 /dev/loop1 ro",
      "37 36 98:0 / /work/disk-a/p1 ro - ext4 /dev/loop2 ro",
      "38 36 98:0 / /work/disk-a/with\\040space ro - ext4 /dev/loop3 ro",
      "39 35 98:0 / /work-other/mnt-b ro - ext4 /dev/loop4 ro",
      "40 35 98:0 / /work ro - tmpfs tmpfs rw"
    ].join("\n")
    // Act
    const mounts = mountsBelow(mountinfo, "/work")
    // Assess
    assert.strictEqual(unescapeMountPath("a\\040b\\011c\\134d"), "a b\tc\\d")
    assert.deepStrictEqual(mounts, ["/work/disk-a/with space", "/work/disk-a/p1", "/work/disk-a", "/work"])
  })
})

describe("the sweep of what a killed streamer left", () => {
  it.scopedLive("unmounts, detaches and removes what a process killed with SIGKILL while its disk was mounted left, and nothing else", () =>
    Effect.gen(function* () {
      // Prepare: a GPT disk of two ext4 partitions on a loop device without partition devices
      // (so the mount makes loop devices of its own), mounted by a process that is then killed
      const first = filesystemImage(scratch, "first", "ext4", { "a.txt": "first\n" })
      const second = filesystemImage(scratch, "second", "ext4", { "b.txt": "second\n" })
      const disk = gptDisk(scratch, "disk", [{ image: first }, { image: second }])
      const workDir = join(scratch, "work")
      mkdirSync(workDir)
      writeFileSync(join(workDir, "kept.json"), "not the streamer's scratch")
      // The disk's loop device, and afterwards whatever a failed assertion leaves under it
      const diskLoop = yield* Effect.acquireRelease(
        Effect.sync(() => attach(disk.path)),
        (loop) =>
          Effect.sync(() => {
            for (const mountPoint of [...mountsUnder(workDir)].reverse()) tool("umount", ["--lazy", mountPoint])
            for (const left of loopsOver(loop)) detach(left)
            detach(loop)
          })
      )
      const unrelated = yield* Effect.acquireRelease(
        Effect.sync(() => attach(first)),
        (loop) => Effect.sync(() => detach(loop))
      )
      const filesystems = yield* killWhileMounted(diskLoop, workDir)
      const leftMounts = mountsUnder(workDir)
      const leftLoops = loopsOver(diskLoop)
      // A record that names the unrelated loop device with another backing: not the streamer's any more
      mkdirSync(join(workDir, DEVICE_RECORDS), { recursive: true })
      writeFileSync(join(workDir, DEVICE_RECORDS, "loop-stale.json"), JSON.stringify({ kind: "loop", device: unrelated, backing: diskLoop, offset: 1048576 }))
      // Act
      const report = yield* sweepLeftovers(workDir)
      // Assess: the killed process had left mounts and loop devices; the sweep took them all
      assert.strictEqual(filesystems, 2)
      assert.strictEqual(leftMounts.length, 2, "the killed process left its two mounts")
      assert.strictEqual(leftLoops.length, 2, "the killed process left its two loop devices")
      assert.deepStrictEqual(mountsUnder(workDir), [])
      assert.deepStrictEqual(loopsOver(diskLoop), [])
      assert.strictEqual(report.unmounted.length, 2)
      assert.sameMembers([...report.detached], [...leftLoops])
      assert.deepStrictEqual(report.failures, [])
      // ... and nothing it does not own: a loop device whose record no longer fits, a file of another name
      assert.deepStrictEqual(loopsOver(first), [unrelated])
      assert.deepStrictEqual(
        readdirSync(workDir).filter((name) => Object.values(SCRATCH).some((prefix) => name.startsWith(prefix))),
        []
      )
      assert.isTrue(existsSync(join(workDir, "kept.json")))
      assert.deepStrictEqual(readdirSync(join(workDir, DEVICE_RECORDS)), [])
    })
  )

  it.live("finds nothing to do in a work directory that does not exist", () =>
    Effect.gen(function* () {
      // Act
      const report = yield* sweepLeftovers(join(scratch, "never-made"))
      // Assess
      assert.deepStrictEqual(report, { unmounted: [], detached: [], removed: [], failures: [] })
    })
  )
})
