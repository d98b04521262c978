import { assert, describe, it } from "@effect/vitest"
import { Schema } from "effect"
import { DiskLayout } from "@backup-actions/contracts"
import { parseHeader } from "./manifest"
import { compareLayout, describeLayout, type MemberFound } from "./tree-check"

const MiB = 1024 * 1024

/** A disk of three partitions: ext4 as files, one with no filesystem as its bytes, an LVM physical volume with one logical volume. */
const layout: DiskLayout = {
  kind: "volumes",
  diskBytes: 64 * MiB,
  partitionTable: { label: "gpt", id: "8021E10F-86A3-064E-A3FB-E58CB7EC88C5", sectorBytes: 512, head: { member: "disk-head.img", sizeBytes: MiB } },
  volumes: [
    { name: "p1", partition: { number: 1, startBytes: MiB, sizeBytes: 16 * MiB, type: "0FC63DAF-8483-4772-8E79-3D69D8477DE4", label: "root" }, filesystem: "ext4", archivedAs: "files", member: "p1" },
    { name: "p2", partition: { number: 2, startBytes: 17 * MiB, sizeBytes: 2 * MiB, type: "0FC63DAF-8483-4772-8E79-3D69D8477DE4" }, archivedAs: "raw", member: "p2.img", rawBytes: 2 * MiB, reason: "no filesystem" },
    { name: "p3", partition: { number: 3, startBytes: 19 * MiB, sizeBytes: 40 * MiB, type: "E6D6D379-F507-44C2-A23C-238F2A3DF928" }, filesystem: "LVM2_member", volumeGroup: "vg0", archivedAs: "lvm" },
    {
      name: "lvm/vg0/data",
      logicalVolume: { volumeGroup: "vg0", volumeGroupUuid: "vg-uuid", name: "data", uuid: "lv-uuid", sizeBytes: 8 * MiB, extents: [{ startBytes: 20 * MiB, sizeBytes: 8 * MiB }] },
      filesystem: "xfs",
      archivedAs: "files",
      member: "lvm/vg0/data"
    }
  ]
}

const members = (entries: Record<string, MemberFound>) => (member: string) => entries[member]

describe("the disk layout of a file manifest", () => {
  it("is read from the manifest's header, and a header without one (an older archive) still reads", () => {
    // Prepare
    const header = { kind: "backup-actions/file-manifest", version: 1, archive: "a", format: "tar", compression: "zstd", entries: 1, fileBytes: 0, archiveBytes: 1, checksum: { algorithm: "SHA256", type: "COMPOSITE", value: "x" } }
    // Act
    const withLayout = parseHeader(JSON.stringify({ ...header, layout: Schema.encodeSync(DiskLayout)(layout) }))
    const without = parseHeader(JSON.stringify(header))
    // Assess
    assert.deepStrictEqual(withLayout._tag === "Right" && withLayout.right.kind === "backup-actions/file-manifest" ? withLayout.right.layout : undefined, layout)
    assert.strictEqual(without._tag, "Right")
  })

  it("matches an archive holding each volume's directory and each raw range with its exact size", () => {
    // Act
    const problems = compareLayout(
      layout,
      members({
        "disk-head.img": { type: "file", size: MiB },
        p1: { type: "directory", size: 0 },
        "p2.img": { type: "file", size: 2 * MiB },
        "lvm/vg0/data": { type: "directory", size: 0 }
      })
    )
    // Assess
    assert.deepStrictEqual(problems, [])
  })

  it("names each member the archive lacks, holds as something else, or holds at another size", () => {
    // Act
    const problems = compareLayout(layout, members({ p1: { type: "file", size: 3 }, "p2.img": { type: "file", size: 2 * MiB - 1 } }))
    // Assess
    assert.deepStrictEqual(problems, [
      "p1: the manifest says its files are in p1/, which the archive holds as a file",
      "lvm/vg0/data: the manifest says its files are in lvm/vg0/data/, which the archive does not hold",
      "disk-head.img: the manifest lists it as a raw range of 1048576 bytes, which the archive does not hold",
      `p2.img: ${2 * MiB - 1} bytes, the manifest's raw range is ${2 * MiB}`
    ])
  })

  it("is described one line per member, and not at all for a filesystem on the whole disk", () => {
    assert.deepStrictEqual(describeLayout(layout), [
      "disk-head.img: the disk's first 1048576 bytes (its gpt partition table)",
      'p1/: partition 1 "root" (ext4)',
      `p2.img: partition 2 (no filesystem), its exact ${2 * MiB} bytes (no filesystem)`,
      "partition 3: LVM physical volume of volume group vg0, its logical volumes under lvm/",
      "lvm/vg0/data/: logical volume vg0/data (xfs)"
    ])
    assert.deepStrictEqual(describeLayout({ kind: "filesystem", diskBytes: MiB, volumes: [{ name: "disk", filesystem: "ext4", archivedAs: "files", member: "." }] }), [])
    assert.deepStrictEqual(describeLayout(undefined), [])
  })
})
