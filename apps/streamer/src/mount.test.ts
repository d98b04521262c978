import { randomBytes } from "node:crypto"
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, truncateSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, assert, describe, it } from "@effect/vitest"
import { Effect, Either } from "effect"
import type { ArchivedVolume } from "@backup-actions/contracts"
import { attach, detach, filesystemImage as makeFilesystemImage, gptDisk as makeGptDisk, installed, loopsOver, mountsUnder, tool, type Partition } from "./test-disks"
import { DEVICE_RECORDS } from "./leftovers"
import { DISK_HEAD_MEMBER, MOUNT_OPTIONS, extentsOf, linearTable, mountDisk, parseBlkidExport, type MountedDisk } from "./mount"

const MiB = 1024 * 1024
const scratch = mkdtempSync(join(tmpdir(), "mount-test-"))
afterAll(() => rmSync(scratch, { recursive: true, force: true }))

const filesystemImage = (name: string, type: "ext4" | "xfs", files: Record<string, string>, journaled: Record<string, string> = {}): string =>
  makeFilesystemImage(scratch, name, type, files, journaled)
const gptDisk = (name: string, partitions: ReadonlyArray<Partition>) => makeGptDisk(scratch, name, partitions)

/** What is left in a work directory: its files, and the device records (an empty records directory is no leftover). */
const filesLeftIn = (workDir: string): ReadonlyArray<string> => {
  const records = join(workDir, DEVICE_RECORDS)
  return [...readdirSync(workDir).filter((name) => name !== DEVICE_RECORDS), ...(existsSync(records) ? readdirSync(records) : [])]
}

/** Runs `inspect` on what mountDisk made of a loop device over the disk, and checks that nothing of it is left afterwards. */
const withMountedDisk = <A>(disk: string, options: { readonly readOnly?: boolean }, inspect: (mounted: MountedDisk) => A) =>
  Effect.gen(function* () {
    const workDir = mkdtempSync(join(scratch, "work-"))
    const loop = attach(disk, options)
    const result = yield* Effect.scoped(Effect.map(Effect.either(mountDisk(loop, workDir)), (mounted) => Either.map(mounted, inspect))).pipe(
      Effect.ensuring(Effect.sync(() => detach(loop)))
    )
    return { result, leftLoops: loopsOver(loop), leftMounts: mountsUnder(workDir), leftFiles: filesLeftIn(workDir) }
  })

const volumeNamed = (mounted: MountedDisk, name: string): ArchivedVolume | undefined => mounted.layout.volumes.find((volume) => volume.name === name)

describe("the mount options", () => {
  it("never skip a journal: no noload, no norecovery; XFS mounts a copy of a mounted filesystem (nouuid)", () => {
    for (const [fsType, options] of Object.entries(MOUNT_OPTIONS)) {
      assert.notMatch(options, /noload|norecovery/, fsType)
      assert.match(options, /(^|,)ro(,|$)/, fsType)
    }
    assert.strictEqual(MOUNT_OPTIONS["ext4"], "ro")
    assert.strictEqual(MOUNT_OPTIONS["xfs"], "ro,nouuid")
  })
})

describe("mounting a partitioned disk", () => {
  it.live("mounts every partition with a filesystem, replaying the journals of ext4 and XFS, and takes the others as raw ranges", () =>
    Effect.gen(function* () {
      // Prepare: ext4 and XFS each with a file only in its journal, a partition of random bytes, a swap partition
      const ext4 = filesystemImage("journaled-ext4", "ext4", { "old.txt": "committed and in place\n" }, { "journaled.txt": "only in the ext4 journal\n" })
      const hasXfs = installed("mkfs.xfs")
      const xfs = hasXfs ? filesystemImage("journaled-xfs", "xfs", { "old.txt": "in place\n" }, { "journaled.txt": "only in the XFS log\n" }) : undefined
      const random = join(scratch, "random.bin")
      writeFileSync(random, randomBytes(2 * MiB))
      const swap = join(scratch, "swap.img")
      writeFileSync(swap, "")
      truncateSync(swap, 4 * MiB)
      tool("mkswap", ["-q", swap])
      const disk = gptDisk("mixed", [{ image: ext4 }, ...(xfs === undefined ? [] : [{ image: xfs }]), { image: random }, { image: swap, type: "swap" }])
      const [rawNumber, swapNumber] = hasXfs ? [3, 4] : [2, 3]
      // The fixture needs recovery: without the journal, the journaled file is not there
      assert.include(tool("dumpe2fs", ["-h", ext4]), "needs_recovery")
      const noload = join(scratch, "noload")
      mkdirSync(noload)
      const ext4Loop = attach(ext4, { readOnly: true })
      tool("mount", ["-t", "ext4", "-o", "ro,noload", ext4Loop, noload])
      const withoutJournal = readdirSync(noload)
      tool("umount", [noload])
      detach(ext4Loop)
      assert.notInclude(withoutJournal, "journaled.txt")
      assert.include(withoutJournal, "old.txt")
      // Act
      const checked = yield* withMountedDisk(disk.path, {}, (mounted) => ({
        mounted,
        ext4: readFileSync(join(mounted.root, "p1", "journaled.txt"), "utf8"),
        xfs: hasXfs ? readFileSync(join(mounted.root, "p2", "journaled.txt"), "utf8") : undefined,
        rootEntries: readdirSync(mounted.root).sort()
      }))
      // Assess: the journaled files are there
      assert.isTrue(Either.isRight(checked.result), String(Either.isLeft(checked.result) ? checked.result.left.reason : ""))
      if (Either.isLeft(checked.result)) return
      const { mounted, ext4: ext4File, xfs: xfsFile, rootEntries } = checked.result.right
      assert.strictEqual(ext4File, "only in the ext4 journal\n")
      if (hasXfs) assert.strictEqual(xfsFile, "only in the XFS log\n")
      assert.deepStrictEqual(rootEntries, hasXfs ? ["p1", "p2"] : ["p1"])
      // Assess: the layout says which partition is which and where it went
      assert.strictEqual(mounted.layout.kind, "volumes")
      assert.strictEqual(mounted.layout.partitionTable?.label, "gpt")
      assert.deepStrictEqual(mounted.layout.partitionTable?.head, { member: DISK_HEAD_MEMBER, sizeBytes: MiB })
      const p1 = volumeNamed(mounted, "p1")
      assert.deepStrictEqual([p1?.archivedAs, p1?.member, p1?.filesystem, p1?.partition?.startBytes, p1?.partition?.sizeBytes], ["files", "p1", "ext4", MiB, 16 * MiB])
      assert.strictEqual(p1?.partition?.type, "0FC63DAF-8483-4772-8E79-3D69D8477DE4")
      if (hasXfs) assert.deepStrictEqual([volumeNamed(mounted, "p2")?.archivedAs, volumeNamed(mounted, "p2")?.filesystem], ["files", "xfs"])
      const raw = volumeNamed(mounted, `p${rawNumber}`)
      assert.deepStrictEqual([raw?.archivedAs, raw?.member, raw?.rawBytes, raw?.reason], ["raw", `p${rawNumber}.img`, 2 * MiB, "no filesystem"])
      const swapVolume = volumeNamed(mounted, `p${swapNumber}`)
      assert.deepStrictEqual([swapVolume?.archivedAs, swapVolume?.filesystem, swapVolume?.reason], ["raw", "swap", "swap: not a filesystem the streamer mounts"])
      assert.strictEqual(swapVolume?.partition?.type, "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F")
      // Assess: the raw ranges are the partitions' bytes, and the disk's head
      assert.deepStrictEqual(
        mounted.rawRanges.map((range) => [range.member, range.offset, range.bytes]),
        [
          [DISK_HEAD_MEMBER, 0, MiB],
          [`p${rawNumber}.img`, 0, 2 * MiB],
          [`p${swapNumber}.img`, 0, 4 * MiB]
        ]
      )
      // Assess: nothing is left: no mount, no loop device, no directory
      assert.deepStrictEqual([checked.leftLoops, checked.leftMounts, checked.leftFiles], [[], [], []])
    })
  )

  it.live("takes a partition whose journal needs recovery as raw bytes when the disk is read-only, never mounting it without its journal", () =>
    Effect.gen(function* () {
      // Prepare
      const journaled = filesystemImage("read-only-ext4", "ext4", { "old.txt": "in place\n" }, { "journaled.txt": "in the journal\n" })
      const clean = filesystemImage("read-only-clean", "ext4", { "clean.txt": "clean\n" })
      const disk = gptDisk("read-only", [{ image: journaled }, { image: clean }])
      // Act
      const checked = yield* withMountedDisk(disk.path, { readOnly: true }, (mounted) => ({ mounted, clean: readFileSync(join(mounted.root, "p2", "clean.txt"), "utf8") }))
      // Assess
      assert.isTrue(Either.isRight(checked.result))
      if (Either.isLeft(checked.result)) return
      const p1 = volumeNamed(checked.result.right.mounted, "p1")
      assert.strictEqual(p1?.archivedAs, "raw")
      assert.match(p1?.reason ?? "", /^ext4 could not be mounted: /)
      assert.strictEqual(checked.result.right.clean, "clean\n")
      assert.deepStrictEqual([checked.leftLoops, checked.leftMounts, checked.leftFiles], [[], [], []])
    })
  )

  it.live("keeps a filesystem on the whole disk at the root, as archives made before partitions were laid out", () =>
    Effect.gen(function* () {
      // Prepare
      const image = filesystemImage("whole-disk", "ext4", { "at-the-root.txt": "root\n" }, { "journaled.txt": "replayed\n" })
      // Act
      const checked = yield* withMountedDisk(image, {}, (mounted) => ({ mounted, journaled: readFileSync(join(mounted.root, "journaled.txt"), "utf8") }))
      // Assess
      assert.isTrue(Either.isRight(checked.result))
      if (Either.isLeft(checked.result)) return
      const { mounted, journaled } = checked.result.right
      assert.strictEqual(journaled, "replayed\n")
      assert.strictEqual(mounted.layout.kind, "filesystem")
      assert.deepStrictEqual(
        mounted.filesystems.map((filesystem) => filesystem.member),
        ["."]
      )
      assert.deepStrictEqual(mounted.rawRanges, [])
      assert.deepStrictEqual([checked.leftLoops, checked.leftMounts, checked.leftFiles], [[], [], []])
    })
  )

  it.live("fails with NotMountable when no partition holds a filesystem it mounts, for the caller's raw image of the disk", () =>
    Effect.gen(function* () {
      // Prepare
      const random = join(scratch, "only-random.bin")
      writeFileSync(random, randomBytes(MiB))
      const disk = gptDisk("nothing-to-mount", [{ image: random }])
      // Act
      const checked = yield* withMountedDisk(disk.path, {}, (mounted) => mounted)
      // Assess
      assert.isTrue(Either.isLeft(checked.result))
      if (Either.isRight(checked.result)) return
      assert.strictEqual(checked.result.left._tag, "NotMountable")
      assert.include(checked.result.left.reason, "p1: no filesystem")
      assert.deepStrictEqual([checked.leftLoops, checked.leftMounts, checked.leftFiles], [[], [], []])
    })
  )
})

describe("an LVM volume group on a partition", () => {
  it.live.skipIf(!installed("lvm"))("is read through loop devices of the streamer's own, activating nothing, its logical volume mounted as lvm/<vg>/<lv>", () =>
    Effect.gen(function* () {
      // Prepare: a partition that is an LVM physical volume, one volume group, one logical volume with ext4
      const volumeGroup = `bamount${randomBytes(3).toString("hex")}`
      const content = filesystemImage("lvm-content", "ext4", { "in-the-lv.txt": "logical volume\n" }, { "journaled.txt": "lv journal\n" })
      const disk = gptDisk("lvm", [{ bytes: 32 * MiB, type: "lvm" }])
      const partition = disk.partitions[0] ?? { start: 0, bytes: 0 }
      const pv = attach(disk.path, { offset: partition.start, bytes: partition.bytes })
      let lvOffset = 0
      try {
        const lvm = (...args: ReadonlyArray<string>) => tool("lvm", [args[0] ?? "", "--driverloaded", "n", "--devices", pv, ...args.slice(1)])
        lvm("pvcreate", "--quiet", pv)
        lvm("vgcreate", "--quiet", "--autobackup", "n", volumeGroup, pv)
        lvm("lvcreate", "--quiet", "--autobackup", "n", "--activate", "n", "--zero", "n", "--wipesignatures", "n", "--size", "16m", "--name", "data", volumeGroup)
        const peStart = Number(JSON.parse(lvm("pvs", "--reportformat", "json", "--units", "b", "--nosuffix", "-o", "pe_start")).report[0].pv[0].pe_start)
        lvOffset = partition.start + peStart
        tool("dd", [`if=${content}`, `of=${disk.path}`, "bs=1M", `seek=${lvOffset}`, "oflag=seek_bytes", "conv=notrunc,sparse", "status=none"])
      } finally {
        detach(pv)
      }
      // Act
      const checked = yield* withMountedDisk(disk.path, {}, (mounted) => ({
        mounted,
        file: readFileSync(join(mounted.root, "lvm", volumeGroup, "data", "in-the-lv.txt"), "utf8"),
        journaled: readFileSync(join(mounted.root, "lvm", volumeGroup, "data", "journaled.txt"), "utf8")
      }))
      // Assess
      assert.isTrue(Either.isRight(checked.result), String(Either.isLeft(checked.result) ? checked.result.left.reason : ""))
      if (Either.isLeft(checked.result)) return
      const { mounted, file, journaled } = checked.result.right
      assert.strictEqual(file, "logical volume\n")
      assert.strictEqual(journaled, "lv journal\n")
      const physical = volumeNamed(mounted, "p1")
      assert.deepStrictEqual([physical?.archivedAs, physical?.filesystem, physical?.volumeGroup], ["lvm", "LVM2_member", volumeGroup])
      const logical = volumeNamed(mounted, `lvm/${volumeGroup}/data`)
      assert.deepStrictEqual([logical?.archivedAs, logical?.member, logical?.filesystem], ["files", `lvm/${volumeGroup}/data`, "ext4"])
      assert.deepStrictEqual(logical?.logicalVolume?.extents, [{ startBytes: lvOffset, sizeBytes: 16 * MiB }])
      assert.deepStrictEqual([logical?.logicalVolume?.volumeGroup, logical?.logicalVolume?.name, logical?.logicalVolume?.sizeBytes], [volumeGroup, "data", 16 * MiB])
      // Nothing was activated, and nothing is left
      assert.isFalse(existsSync(join("/dev", volumeGroup)))
      assert.deepStrictEqual([checked.leftLoops, checked.leftMounts, checked.leftFiles], [[], [], []])
    })
  )

  it("maps a logical volume's segments to disk ranges, adjacent ones merged, and refuses what it can't map", () => {
    const pvs = new Map([
      ["/dev/loop7", { diskOffset: 10 * MiB, peStart: MiB }],
      ["/dev/loop8", { diskOffset: 100 * MiB, peStart: MiB }]
    ])
    const extent = 4 * MiB
    // Two segments that are adjacent on the disk make one range; a third elsewhere another
    assert.deepStrictEqual(
      extentsOf(
        [
          { segtype: "linear", seg_start: String(8 * MiB), seg_pe_ranges: "/dev/loop7:2-2" },
          { segtype: "linear", seg_start: "0", seg_pe_ranges: "/dev/loop7:0-1" },
          { segtype: "linear", seg_start: String(12 * MiB), seg_pe_ranges: "/dev/loop8:5-5" }
        ],
        extent,
        pvs
      ),
      {
        extents: [
          { startBytes: 11 * MiB, sizeBytes: 12 * MiB },
          { startBytes: 101 * MiB + 20 * MiB, sizeBytes: 4 * MiB }
        ]
      }
    )
    assert.deepStrictEqual(extentsOf([{ segtype: "striped", seg_start: "0", seg_pe_ranges: "/dev/loop7:0-1 /dev/loop8:0-1" }], extent, pvs), {
      unreadable: "a striped segment"
    })
    assert.deepStrictEqual(extentsOf([{ segtype: "thin", seg_start: "0", seg_pe_ranges: "" }], extent, pvs), { unreadable: "a thin segment" })
    assert.deepStrictEqual(extentsOf([{ segtype: "linear", seg_start: "0", seg_pe_ranges: "[unknown]:0-3" }], extent, pvs), {
      unreadable: "extents on [unknown]:0-3, not on this disk"
    })
    // The device-mapper table of a volume in two ranges, in sectors
    assert.strictEqual(
      linearTable("/dev/nvme1n1", [
        { startBytes: 11 * MiB, sizeBytes: 12 * MiB },
        { startBytes: 121 * MiB, sizeBytes: 4 * MiB }
      ]),
      `0 24576 linear /dev/nvme1n1 22528\n24576 8192 linear /dev/nvme1n1 247808\n`
    )
  })
})

describe("blkid's export format", () => {
  it("gives the type, UUID and label, escapes undone", () => {
    assert.deepStrictEqual(parseBlkidExport("DEVNAME=/dev/loop1\nUUID=1234-abcd\nLABEL=my\\ data\nTYPE=ext4\nUSAGE=filesystem\n"), {
      type: "ext4",
      uuid: "1234-abcd",
      label: "my data"
    })
    assert.deepStrictEqual(parseBlkidExport(""), { type: "" })
  })
})
