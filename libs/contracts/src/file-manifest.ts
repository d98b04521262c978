import { createHash } from "node:crypto"
import { createReadStream } from "node:fs"
import { Schema } from "effect"

/**
 * The SHA-256 that a file-level archive manifest records for a regular file, as lowercase hex.
 * The streamer writes it and `verify` recomputes it from the extracted tree; one function keeps
 * the two from ever disagreeing on how a file is hashed. Streamed, so a file of any size costs
 * one MiB of memory.
 */
export const sha256OfFile = (path: string): Promise<string> =>
  new Promise((resolve, reject) => {
    const hash = createHash("sha256")
    createReadStream(path, { highWaterMark: 1024 * 1024 })
      .on("data", (data) => hash.update(data))
      .on("error", reject)
      .on("end", () => resolve(hash.digest("hex")))
  })

/** A partition as the disk's partition table describes it (sfdisk's view), in bytes. */
export const DiskPartition = Schema.Struct({
  /** Its number in the table: 1 is the first; MBR logical partitions start at 5. */
  number: Schema.Number,
  startBytes: Schema.Number,
  sizeBytes: Schema.Number,
  /** The partition type: a GUID on GPT (0FC63DAF-8483-4772-8E79-3D69D8477DE4 is Linux data), a hex code on MBR (83). */
  type: Schema.String,
  /** GPT only: the partition's own UUID, its name (label) and attribute bits. */
  uuid: Schema.optional(Schema.String),
  label: Schema.optional(Schema.String),
  attributes: Schema.optional(Schema.String),
  /** MBR only: the boot flag. */
  bootable: Schema.optional(Schema.Boolean)
})
export type DiskPartition = typeof DiskPartition.Type

/** An LVM logical volume, by the names and UUIDs of its volume group's metadata. */
export const LogicalVolume = Schema.Struct({
  volumeGroup: Schema.String,
  volumeGroupUuid: Schema.String,
  name: Schema.String,
  uuid: Schema.String,
  sizeBytes: Schema.Number,
  /** Where its extents lie on the disk, in order: one range for a contiguous linear volume. */
  extents: Schema.Array(Schema.Struct({ startBytes: Schema.Number, sizeBytes: Schema.Number }))
})
export type LogicalVolume = typeof LogicalVolume.Type

/**
 * How one part of the disk went into the archive:
 * - `files`: its filesystem was mounted (its journal replayed) and its tree is the directory `member`;
 * - `raw`: its bytes, exactly, are the regular file `member` (no filesystem the streamer mounts,
 *   or one that could not be mounted: `reason` says which);
 * - `lvm`: an LVM physical volume; its logical volumes are listed as volumes of their own;
 * - `none`: nothing of its own to keep (an MBR extended partition: its logical partitions are listed).
 */
export const ArchivedAs = Schema.Literal("files", "raw", "lvm", "none")
export type ArchivedAs = typeof ArchivedAs.Type

/** A partition, a logical volume or the whole disk, and where the archive holds it. */
export const ArchivedVolume = Schema.Struct({
  /** Its name in the archive: `p1`, `p2`, ... for partitions, `lvm/<vg>/<lv>` for logical volumes, `disk` for the whole disk. */
  name: Schema.String,
  partition: Schema.optional(DiskPartition),
  logicalVolume: Schema.optional(LogicalVolume),
  /** The filesystem or signature found on it (blkid's TYPE: ext4, xfs, swap, LVM2_member); absent when none. */
  filesystem: Schema.optional(Schema.String),
  filesystemUuid: Schema.optional(Schema.String),
  filesystemLabel: Schema.optional(Schema.String),
  /** An LVM physical volume: the volume group it belongs to. */
  volumeGroup: Schema.optional(Schema.String),
  archivedAs: ArchivedAs,
  /** The tar member that holds it: a directory (files) or a regular file of its exact bytes (raw). */
  member: Schema.optional(Schema.String),
  /** A raw volume: how many bytes the member holds (the partition's or logical volume's size). */
  rawBytes: Schema.optional(Schema.Number),
  /** Why it went raw or not at all, when it did. */
  reason: Schema.optional(Schema.String)
})
export type ArchivedVolume = typeof ArchivedVolume.Type

/**
 * What of the disk a file-level archive holds, and where. `filesystem`: one filesystem on the
 * whole disk, its tree at the archive's root (`.`), as archives made before partitions were
 * laid out hold it. `volumes`: one top-level member per partition and logical volume (`p1/`,
 * `p3.img`, `lvm/<vg>/<lv>/`), and the disk's first bytes up to its first partition (the
 * partition table, and any boot code) as `disk-head.img`.
 */
export const DiskLayout = Schema.Struct({
  kind: Schema.Literal("filesystem", "volumes"),
  diskBytes: Schema.Number,
  /** The partition table, when the disk has one: gpt or dos (MBR), its identifier and sector size. */
  partitionTable: Schema.optional(
    Schema.Struct({
      label: Schema.String,
      id: Schema.optional(Schema.String),
      sectorBytes: Schema.Number,
      /** The disk's first bytes, up to its first partition, as a raw member. */
      head: Schema.optional(Schema.Struct({ member: Schema.String, sizeBytes: Schema.Number }))
    })
  ),
  volumes: Schema.Array(ArchivedVolume)
})
export type DiskLayout = typeof DiskLayout.Type

/** The raw members of a layout: every tar member that is a byte-exact copy of a disk range, with its size. */
export const rawMembersOf = (layout: DiskLayout): ReadonlyArray<{ readonly member: string; readonly sizeBytes: number }> => [
  ...(layout.partitionTable?.head === undefined ? [] : [layout.partitionTable.head]),
  ...layout.volumes.flatMap((volume) =>
    volume.archivedAs === "raw" && volume.member !== undefined ? [{ member: volume.member, sizeBytes: volume.rawBytes ?? 0 }] : []
  )
]
