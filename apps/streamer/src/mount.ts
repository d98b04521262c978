import { randomBytes } from "node:crypto"
import { lstat, mkdir, mkdtemp, readFile, readdir, realpath, rm, rmdir, stat, writeFile } from "node:fs/promises"
import { join } from "node:path"
import { Effect, Schema, type Scope } from "effect"
import type { ArchivedVolume, DiskLayout, DiskPartition, LogicalVolume } from "@backup-actions/contracts"
import { reasonOf, run } from "./exec"
import { SCRATCH, forgetDevice, recordDevice } from "./leftovers"

export class NotMountable extends Schema.TaggedError<NotMountable>()("NotMountable", {
  device: Schema.String,
  reason: Schema.String
}) {}

/**
 * Filesystems the streamer mounts, and how: read-only, with no option that skips the journal
 * (ext3/ext4's `noload`, XFS's `norecovery`), so that a crash-consistent snapshot yields its
 * last committed changes. The kernel replays the journal (log) before the read-only mount
 * completes, which writes to the device: the device is the restored copy, never the source,
 * and is attached writable for that (see ADR 4). XFS's `nouuid` lets a copy of a filesystem
 * that is also mounted on this host (its UUID the same) be mounted.
 */
export const MOUNT_OPTIONS: Readonly<Record<string, string>> = {
  ext4: "ro",
  ext3: "ro",
  ext2: "ro",
  xfs: "ro,nouuid",
  btrfs: "ro",
  vfat: "ro",
  ntfs: "ro"
}

/** The options a filesystem is mounted with, or undefined when the streamer does not mount it. */
export const mountOptionsFor = (fsType: string): string | undefined => MOUNT_OPTIONS[fsType]

/** A filesystem mounted for the archive, and the tar member its tree becomes. */
export interface MountedFilesystem {
  /** `.` for a filesystem on the whole disk; `p1`, `lvm/<vg>/<lv>` in the volumes layout. */
  readonly member: string
  readonly mountPoint: string
  readonly source: string
  readonly fsType: string
}

/** A byte range of a block device that goes into the archive exactly, as the regular file `member`. */
export interface RawRange {
  readonly member: string
  readonly device: string
  readonly offset: number
  readonly bytes: number
}

/** What of a disk the archive takes: mounted filesystems under `root`, raw ranges, and the layout the manifest records. */
export interface MountedDisk {
  /** The directory tar runs in; its members are the filesystems' `member`s. */
  readonly root: string
  readonly filesystems: ReadonlyArray<MountedFilesystem>
  readonly rawRanges: ReadonlyArray<RawRange>
  readonly layout: DiskLayout
}

/** The name of the raw member that holds the disk's first bytes, up to its first partition. */
export const DISK_HEAD_MEMBER = "disk-head.img"

interface Probe {
  readonly type: string
  readonly uuid?: string
  readonly label?: string
}

/** `KEY=value` lines of `blkid -o export`, its backslash escapes undone. */
export const parseBlkidExport = (output: string): Probe => {
  const values = new Map<string, string>()
  for (const line of output.split("\n")) {
    const equals = line.indexOf("=")
    if (equals > 0) values.set(line.slice(0, equals), line.slice(equals + 1).replace(/\\(.)/g, "$1"))
  }
  const uuid = values.get("UUID")
  const label = values.get("LABEL")
  return { type: values.get("TYPE") ?? "", ...(uuid === undefined ? {} : { uuid }), ...(label === undefined ? {} : { label }) }
}

/** What signature a device holds (a filesystem, swap, an LVM physical volume); an empty type when none, or more than one. */
const probe = (device: string) =>
  run("blkid", ["-p", "-o", "export", device]).pipe(
    Effect.map(parseBlkidExport),
    Effect.orElseSucceed((): Probe => ({ type: "" }))
  )

const sizeOf = (device: string) =>
  run("blockdev", ["--getsize64", device]).pipe(
    Effect.map((output) => Number(output.trim())),
    Effect.mapError((error) => new NotMountable({ device, reason: reasonOf(error) }))
  )

interface SfdiskPartition {
  readonly node?: string
  readonly start: number
  readonly size: number
  readonly type?: string
  readonly uuid?: string
  readonly name?: string
  readonly attrs?: string
  readonly bootable?: boolean
}

interface SfdiskTable {
  readonly partitiontable?: {
    readonly label?: string
    readonly id?: string
    readonly sectorsize?: number
    readonly partitions?: ReadonlyArray<SfdiskPartition>
  }
}

/** MBR types of an extended partition: a container whose logical partitions sfdisk lists on their own. */
const EXTENDED_TYPES = new Set(["5", "f", "85"])

/** The partition number in a partition's device name (`/dev/loop0p2`, `/dev/nvme1n1p2`, `/dev/sdb2`). */
const numberOf = (node: string | undefined, index: number): number => {
  const match = node === undefined ? null : /(\d+)$/.exec(node)
  return match === null ? index + 1 : Number(match[1])
}

/** A device node that exists and is a block device (a kernel partition device, say). */
const isBlockDevice = (path: string) =>
  Effect.promise(() =>
    stat(path).then(
      (stats) => stats.isBlockDevice(),
      () => false
    )
  )

/** Whether a block device refuses writes (a read-only loop device, say). */
const isReadOnly = (device: string) =>
  run("blockdev", ["--getro", device]).pipe(
    Effect.map((output) => output.trim() === "1"),
    Effect.orElseSucceed(() => false)
  )

/**
 * A loop device over a byte range of a disk, detached with the scope: writable (a journal is
 * replayed through it) unless the disk itself is read-only, which a loop device would not
 * pass on (its writes would fail half-way through a replay instead of the mount refusing).
 */
const loopOver = (disk: Disk, offset: number, bytes: number, workDir: string) =>
  Effect.acquireRelease(
    run("losetup", ["--find", "--show", ...(disk.readOnly ? ["--read-only"] : []), `--offset=${offset}`, `--sizelimit=${bytes}`, disk.path]).pipe(
      Effect.map((output) => output.trim()),
      Effect.tap((loop) => recordDevice(workDir, { kind: "loop", device: loop, backing: disk.path, offset }))
    ),
    (loop) =>
      run("losetup", ["--detach", loop]).pipe(
        Effect.zipRight(forgetDevice(workDir, { kind: "loop", device: loop, backing: disk.path, offset })),
        Effect.ignoreLogged
      )
  )

/**
 * Removes the empty directories of a tree, deepest first, never a file and never below
 * another filesystem: a mount that could not be undone keeps its directory.
 */
const removeEmptyDirectories = async (directory: string): Promise<void> => {
  const own = await lstat(directory).catch(() => undefined)
  if (own === undefined || !own.isDirectory()) return
  for (const child of await readdir(directory).catch(() => [])) {
    const path = join(directory, child)
    const stats = await lstat(path).catch(() => undefined)
    if (stats?.isDirectory() === true && stats.dev === own.dev) await removeEmptyDirectories(path)
  }
  await rmdir(directory).catch(() => undefined)
}

/** A directory for the scope's lifetime, removed with its empty subdirectories when the scope closes. */
const scratchDirectory = (workDir: string, prefix: string) =>
  Effect.acquireRelease(
    Effect.promise(() => mkdtemp(join(workDir, prefix))),
    (directory) => Effect.promise(() => removeEmptyDirectories(directory))
  )

/** Mounts a filesystem at a directory (made for it) until the scope closes; fails with the mount's own words. */
const mountAt = (device: string, fsType: string, mountPoint: string) =>
  Effect.gen(function* () {
    yield* Effect.promise(() => mkdir(mountPoint, { recursive: true }))
    yield* Effect.acquireRelease(run("mount", ["-t", fsType, "-o", mountOptionsFor(fsType) ?? "ro", device, mountPoint]), () =>
      run("umount", [mountPoint]).pipe(Effect.ignoreLogged)
    )
  })

/** The disk being archived: its device, and whether it takes writes. */
interface Disk {
  readonly path: string
  readonly readOnly: boolean
}

/** One partition, logical volume or whole disk, as found. */
interface Found {
  readonly name: string
  readonly device: string
  readonly bytes: number
  readonly partition?: DiskPartition
  readonly logicalVolume?: LogicalVolume
  readonly probe: Probe
}

/** Where a found volume went, for the layout and for the archive. */
interface Placed {
  readonly volume: ArchivedVolume
  readonly filesystem?: MountedFilesystem
  readonly raw?: RawRange
}

const describeFound = (found: Found): Omit<ArchivedVolume, "archivedAs"> => ({
  name: found.name,
  ...(found.partition === undefined ? {} : { partition: found.partition }),
  ...(found.logicalVolume === undefined ? {} : { logicalVolume: found.logicalVolume }),
  ...(found.probe.type === "" ? {} : { filesystem: found.probe.type }),
  ...(found.probe.uuid === undefined ? {} : { filesystemUuid: found.probe.uuid }),
  ...(found.probe.label === undefined ? {} : { filesystemLabel: found.probe.label })
})

/** A volume as its exact bytes: the member `<name>.img`, read from its device. */
const asRaw = (found: Found, reason: string): Placed => {
  const member = `${found.name}.img`
  return {
    volume: { ...describeFound(found), archivedAs: "raw", member, rawBytes: found.bytes, reason },
    raw: { member, device: found.device, offset: 0, bytes: found.bytes }
  }
}

/** A volume with a filesystem mounted under the root as the directory `<name>`; its bytes when it can't be mounted. */
const placeVolume = (found: Found, root: string) =>
  Effect.gen(function* () {
    const fsType = found.probe.type
    if (mountOptionsFor(fsType) === undefined) {
      return asRaw(found, fsType === "" ? "no filesystem" : `${fsType}: not a filesystem the streamer mounts`)
    }
    const mountPoint = join(root, found.name)
    const mounted = yield* Effect.either(mountAt(found.device, fsType, mountPoint))
    if (mounted._tag === "Left") {
      const reason = `${fsType} could not be mounted: ${reasonOf(mounted.left)}`
      yield* Effect.logWarning(`${found.name} (${found.device}): ${reason}; archiving its bytes instead`)
      return asRaw(found, reason)
    }
    const placed: Placed = {
      volume: { ...describeFound(found), archivedAs: "files", member: found.name },
      filesystem: { member: found.name, mountPoint, source: found.device, fsType }
    }
    return placed
  })

/** What `lvm lvs --segments` reports of one segment (sizes in bytes). */
interface LvmSegmentRow {
  readonly vg_name: string
  readonly vg_uuid: string
  readonly vg_extent_size: string
  readonly lv_name: string
  readonly lv_uuid: string
  readonly lv_size: string
  readonly segtype: string
  readonly seg_start: string
  readonly seg_pe_ranges: string
}

interface LvmPvRow {
  readonly pv_name: string
  readonly pe_start: string
  readonly vg_name: string
}

/** An LVM physical volume of this disk: its device and where it starts on the disk. */
interface PhysicalVolume {
  readonly found: Found
  readonly diskOffset: number
}

/**
 * LVM's reporting commands, reading the metadata of these devices only: no other device of
 * the host is scanned (so a copy of the host's own volume group is no duplicate), no lock
 * is taken, nothing is written, and device-mapper is not touched.
 */
const lvmReport = <A>(command: "pvs" | "lvs", devices: ReadonlyArray<string>, fields: string, extra: ReadonlyArray<string> = []) =>
  run("lvm", [
    command,
    "--readonly",
    "--driverloaded",
    "n",
    "--devices",
    devices.join(","),
    "--reportformat",
    "json",
    "--units",
    "b",
    "--nosuffix",
    ...extra,
    "-o",
    fields
  ]).pipe(
    Effect.mapError(reasonOf),
    Effect.flatMap((output) =>
      Effect.try({
        try: () => {
          const report = (JSON.parse(output) as { readonly report?: ReadonlyArray<Record<string, ReadonlyArray<A> | undefined>> }).report ?? []
          // Sections are named by what a row is: "pv", "lv", or with --segments "seg".
          const key = command === "pvs" ? "pv" : extra.includes("--segments") ? "seg" : "lv"
          return report.flatMap((section) => section[key] ?? [])
        },
        catch: (error) => `lvm ${command} answered what is not its JSON report: ${String(error)}`
      })
    )
  )

/** A byte range of the disk. */
interface Extent {
  readonly startBytes: number
  readonly sizeBytes: number
}

/**
 * Where a logical volume's segments lie on the disk, in order, adjacent ranges merged; or why
 * they can't be read from this disk (a segment type other than linear, a physical volume
 * that is not on this disk).
 */
export const extentsOf = (
  segments: ReadonlyArray<Pick<LvmSegmentRow, "segtype" | "seg_start" | "seg_pe_ranges">>,
  extentBytes: number,
  physicalVolumes: ReadonlyMap<string, { readonly diskOffset: number; readonly peStart: number }>
): { readonly extents: ReadonlyArray<Extent> } | { readonly unreadable: string } => {
  const extents: Array<Extent> = []
  for (const segment of [...segments].sort((left, right) => Number(left.seg_start) - Number(right.seg_start))) {
    const ranges = segment.seg_pe_ranges.trim().split(/\s+/).filter((range) => range !== "")
    if ((segment.segtype !== "linear" && segment.segtype !== "striped") || ranges.length !== 1) {
      return { unreadable: `a ${segment.segtype} segment` }
    }
    const match = /^(.*):(\d+)-(\d+)$/.exec(ranges[0] ?? "")
    const pv = match === null ? undefined : physicalVolumes.get(match[1] ?? "")
    if (match === null || pv === undefined) return { unreadable: `extents on ${ranges[0] ?? "an unknown device"}, not on this disk` }
    const first = Number(match[2])
    const last = Number(match[3])
    const extent = { startBytes: pv.diskOffset + pv.peStart + first * extentBytes, sizeBytes: (last - first + 1) * extentBytes }
    const previous = extents.at(-1)
    if (previous !== undefined && previous.startBytes + previous.sizeBytes === extent.startBytes) {
      extents[extents.length - 1] = { startBytes: previous.startBytes, sizeBytes: previous.sizeBytes + extent.sizeBytes }
    } else extents.push(extent)
  }
  return extents.length === 0 ? { unreadable: "no segments" } : { extents }
}

/** A device-mapper table that concatenates disk ranges (linear targets), in 512-byte sectors. */
export const linearTable = (disk: string, extents: ReadonlyArray<Extent>): string => {
  let at = 0
  return extents
    .map((extent) => {
      const line = `${at} ${extent.sizeBytes / 512} linear ${disk} ${extent.startBytes / 512}`
      at += extent.sizeBytes / 512
      return `${line}\n`
    })
    .join("")
}

/** Whether this kernel has device-mapper (read from /proc, which creates no device node). */
const hasDeviceMapper = Effect.promise(() =>
  readFile("/proc/misc", "utf8").then(
    (misc) => / device-mapper$/m.test(misc),
    () => false
  )
)

/**
 * A logical volume as a block device, released with the scope: a loop device over its one
 * range of the disk; for a volume in several ranges, a device-mapper device of a name of the
 * streamer's own (never the volume group's), when the kernel has device-mapper.
 */
const logicalVolumeDevice = (disk: Disk, extents: ReadonlyArray<Extent>, workDir: string) =>
  Effect.gen(function* () {
    const only = extents.length === 1 ? extents[0] : undefined
    if (only !== undefined) return yield* loopOver(disk, only.startBytes, only.sizeBytes, workDir)
    if (!(yield* hasDeviceMapper)) {
      return yield* Effect.fail(`its ${extents.length} ranges need device-mapper, which this kernel lacks`)
    }
    const name = `${SCRATCH.mapper}${randomBytes(6).toString("hex")}`
    const table = join(workDir, `${name}.table`)
    yield* Effect.acquireRelease(
      Effect.promise(() => writeFile(table, linearTable(disk.path, extents))),
      () => Effect.promise(() => rm(table, { force: true }))
    )
    yield* Effect.acquireRelease(
      run("dmsetup", ["create", ...(disk.readOnly ? ["--readonly"] : []), name, table]).pipe(Effect.tap(() => recordDevice(workDir, { kind: "device-mapper", name }))),
      () => run("dmsetup", ["remove", "--retry", name]).pipe(Effect.zipRight(forgetDevice(workDir, { kind: "device-mapper", name })), Effect.ignoreLogged)
    )
    return `/dev/mapper/${name}`
  })

/**
 * Whether the host has logical volumes of this volume group active, as device-mapper lists
 * them in sysfs: the same UUID (a copy of the host's own volume group), or the same name.
 */
const hostVolumeGroupClash = async (group: string, uuid: string): Promise<string | undefined> => {
  const mapped = (await readdir("/sys/block").catch(() => [])).filter((device) => device.startsWith("dm-"))
  const uuidPrefix = `LVM-${uuid.replace(/-/g, "")}`
  const namePrefix = `${group.replace(/-/g, "--")}-`
  for (const device of mapped) {
    const [dmUuid, dmName] = await Promise.all(["uuid", "name"].map((field) => readFile(join("/sys/block", device, "dm", field), "utf8").then((text) => text.trim(), () => "")))
    if (uuid !== "" && dmUuid?.startsWith(uuidPrefix) === true) return "the same UUID: a copy of this host's own volume group"
    if (dmName?.startsWith(namePrefix) === true) return "the same name"
  }
  return undefined
}

/**
 * The logical volumes of the LVM physical volumes on this disk, each as a volume of its own,
 * read without activating anything: the streamer reads the metadata (lvm's reporting
 * commands, limited to these devices) and puts a device of its own over each volume's
 * extents. The host's LVM never sees a volume group to activate, so a restored copy of the
 * host's own volume group (same name, same UUIDs) does not clash with it. A volume group the
 * streamer can't read this way (thin or RAID volumes, a physical volume on another disk, no
 * lvm2) is archived as the raw bytes of its physical volumes: nothing is left out.
 */
const logicalVolumes = (disk: Disk, pvs: ReadonlyArray<PhysicalVolume>, root: string, workDir: string) =>
  Effect.gen(function* () {
    const placed: Array<Placed> = []
    const asRawPvs = (members: ReadonlyArray<PhysicalVolume>, reason: string) =>
      Effect.gen(function* () {
        for (const pv of members) {
          yield* Effect.logWarning(`${pv.found.name}: ${reason}; archiving the physical volume's bytes`)
          placed.push(asRaw(pv.found, reason))
        }
      })
    if (pvs.length === 0) return placed
    const devices = pvs.map((pv) => pv.found.device)
    const reported = yield* Effect.either(
      Effect.all([
        lvmReport<LvmPvRow>("pvs", devices, "pv_name,pe_start,vg_name"),
        lvmReport<LvmSegmentRow>("lvs", devices, "vg_name,vg_uuid,vg_extent_size,lv_name,lv_uuid,lv_size,segtype,seg_start,seg_pe_ranges", ["--segments"])
      ])
    )
    if (reported._tag === "Left") {
      yield* asRawPvs(pvs, `its LVM metadata could not be read (${reported.left})`)
      return placed
    }
    const [pvRows, segmentRows] = reported.right
    const byDevice = new Map(pvs.map((pv) => [pv.found.device, pv]))
    const peStarts = new Map(
      pvRows.flatMap((row) => {
        const pv = byDevice.get(row.pv_name)
        return pv === undefined ? [] : [[row.pv_name, { diskOffset: pv.diskOffset, peStart: Number(row.pe_start), vg: row.vg_name }] as const]
      })
    )
    const groups = [...new Set(pvRows.map((row) => row.vg_name))]
    // Physical volumes in no volume group hold no logical volume.
    yield* asRawPvs(
      pvs.filter((pv) => (peStarts.get(pv.found.device)?.vg ?? "") === ""),
      "an LVM physical volume in no volume group"
    )
    for (const group of groups.filter((name) => name !== "")) {
      const members = pvs.filter((pv) => peStarts.get(pv.found.device)?.vg === group)
      const rows = segmentRows.filter((row) => row.vg_name === group)
      const volumes = [...new Set(rows.map((row) => row.lv_uuid))].map((uuid) => rows.filter((row) => row.lv_uuid === uuid))
      const mapped = volumes.map((segments) => {
        const first = segments[0] as LvmSegmentRow
        return { first, layout: extentsOf(segments, Number(first.vg_extent_size), peStarts) }
      })
      const unreadable = mapped.find((volume) => "unreadable" in volume.layout)
      if (volumes.length === 0 || unreadable !== undefined) {
        const why =
          unreadable === undefined || !("unreadable" in unreadable.layout)
            ? `volume group ${group} has no logical volumes`
            : `logical volume ${group}/${unreadable.first.lv_name} has ${unreadable.layout.unreadable}, which the streamer does not map`
        yield* asRawPvs(members, why)
        continue
      }
      const clash = yield* Effect.promise(() => hostVolumeGroupClash(group, mapped[0]?.first.vg_uuid ?? ""))
      if (clash !== undefined) {
        yield* Effect.logWarning(
          `this host has volume group ${group} active (${clash}): the restored copy is read through devices of the streamer's own and never activated, so the two do not meet`
        )
      }
      const groupVolumes: Array<Placed> = []
      for (const { first, layout } of mapped) {
        if (!("extents" in layout)) continue
        const logicalVolume: LogicalVolume = {
          volumeGroup: group,
          volumeGroupUuid: first.vg_uuid,
          name: first.lv_name,
          uuid: first.lv_uuid,
          sizeBytes: Number(first.lv_size),
          extents: layout.extents
        }
        const name = `lvm/${group}/${first.lv_name}`
        const device = yield* Effect.either(logicalVolumeDevice(disk, layout.extents, workDir))
        if (device._tag === "Left") {
          const reason = typeof device.left === "string" ? device.left : reasonOf(device.left)
          groupVolumes.push({ volume: { name, logicalVolume, archivedAs: "none", reason } })
          continue
        }
        const found: Found = { name, device: device.right, bytes: logicalVolume.sizeBytes, logicalVolume, probe: yield* probe(device.right) }
        groupVolumes.push(yield* placeVolume(found, root))
      }
      const unmapped = groupVolumes.find((volume) => volume.volume.archivedAs === "none")
      if (unmapped !== undefined) {
        yield* asRawPvs(members, `logical volume ${unmapped.volume.name}: ${unmapped.volume.reason ?? "not mapped"}`)
        continue
      }
      for (const pv of members) placed.push({ volume: { ...describeFound(pv.found), volumeGroup: group, archivedAs: "lvm" } })
      placed.push(...groupVolumes)
    }
    return placed
  })

/** The volumes layout: every partition (and logical volume) found, mounted or taken as bytes. */
const mountVolumes = (disk: Disk, diskBytes: number, table: NonNullable<SfdiskTable["partitiontable"]>, workDir: string) =>
  Effect.gen(function* () {
    const root = yield* scratchDirectory(workDir, SCRATCH.disk)
    const sector = table.sectorsize ?? 512
    const partitions = table.partitions ?? []
    const placed: Array<Placed> = []
    const pvs: Array<PhysicalVolume> = []
    for (const [index, entry] of partitions.entries()) {
      const partition: DiskPartition = {
        number: numberOf(entry.node, index),
        startBytes: entry.start * sector,
        sizeBytes: entry.size * sector,
        type: entry.type ?? "",
        ...(entry.uuid === undefined ? {} : { uuid: entry.uuid }),
        ...(entry.name === undefined ? {} : { label: entry.name }),
        ...(entry.attrs === undefined ? {} : { attributes: entry.attrs }),
        ...(entry.bootable === undefined ? {} : { bootable: entry.bootable })
      }
      const name = `p${partition.number}`
      if (table.label === "dos" && EXTENDED_TYPES.has(partition.type.toLowerCase())) {
        placed.push({ volume: { name, partition, archivedAs: "none", reason: "an extended partition: its logical partitions are listed on their own" } })
        continue
      }
      // The kernel's partition device when there is one; else (no partition scanning, in a container say) a loop device at its offset.
      const kernelDevice = entry.node !== undefined && (yield* isBlockDevice(entry.node)) ? entry.node : undefined
      const device = kernelDevice ?? (yield* Effect.either(loopOver(disk, partition.startBytes, partition.sizeBytes, workDir)))
      if (typeof device !== "string" && device._tag === "Left") {
        const found: Found = { name, device: disk.path, bytes: partition.sizeBytes, partition, probe: { type: "" } }
        placed.push({
          ...asRaw(found, `no device for the partition (${reasonOf(device.left)})`),
          raw: { member: `${name}.img`, device: disk.path, offset: partition.startBytes, bytes: partition.sizeBytes }
        })
        continue
      }
      const path = typeof device === "string" ? device : device.right
      const found: Found = { name, device: path, bytes: partition.sizeBytes, partition, probe: yield* probe(path) }
      if (found.probe.type === "LVM2_member") {
        pvs.push({ found, diskOffset: partition.startBytes })
        placed.push({ volume: { ...describeFound(found), archivedAs: "lvm" } })
        continue
      }
      placed.push(yield* placeVolume(found, root))
    }
    // The physical volumes' entries are replaced by what their volume groups gave, each group's
    // logical volumes after its first physical volume.
    const lvm = yield* logicalVolumes(disk, pvs, root, workDir)
    const byName = new Map(lvm.filter((volume) => volume.volume.partition !== undefined).map((volume) => [volume.volume.name, volume]))
    const logical = lvm.filter((volume) => volume.volume.partition === undefined)
    const listedGroups = new Set<string>()
    const volumes = placed.flatMap((volume) => {
      const replaced = byName.get(volume.volume.name) ?? volume
      const group = replaced.volume.volumeGroup
      if (group === undefined || listedGroups.has(group)) return [replaced]
      listedGroups.add(group)
      return [replaced, ...logical.filter((candidate) => candidate.volume.logicalVolume?.volumeGroup === group)]
    })
    const filesystems = volumes.flatMap((volume) => (volume.filesystem === undefined ? [] : [volume.filesystem]))
    if (filesystems.length === 0) {
      const seen = volumes.map((volume) => `${volume.volume.name}: ${volume.volume.filesystem ?? "no filesystem"}`).join(", ")
      return yield* new NotMountable({ device: disk.path, reason: `no filesystem this streamer mounts (${seen || "no partitions"})` })
    }
    const firstStart = Math.min(...partitions.map((entry) => entry.start * sector))
    const head: RawRange | undefined = Number.isFinite(firstStart) && firstStart > 0 ? { member: DISK_HEAD_MEMBER, device: disk.path, offset: 0, bytes: firstStart } : undefined
    const layout: DiskLayout = {
      kind: "volumes",
      diskBytes,
      partitionTable: {
        label: table.label ?? "",
        ...(table.id === undefined ? {} : { id: table.id }),
        sectorBytes: sector,
        ...(head === undefined ? {} : { head: { member: head.member, sizeBytes: head.bytes } })
      },
      volumes: volumes.map((volume) => volume.volume)
    }
    const mounted: MountedDisk = {
      root,
      filesystems,
      rawRanges: [...(head === undefined ? [] : [head]), ...volumes.flatMap((volume) => (volume.raw === undefined ? [] : [volume.raw]))],
      layout
    }
    return mounted
  })

/** A disk that is one LVM physical volume, no partition table: its logical volumes are the volumes. */
const mountWholeDiskVolumeGroup = (disk: Disk, diskBytes: number, found: Found, workDir: string) =>
  Effect.gen(function* () {
    const root = yield* scratchDirectory(workDir, SCRATCH.disk)
    const lvm = yield* logicalVolumes(disk, [{ found, diskOffset: 0 }], root, workDir)
    const filesystems = lvm.flatMap((volume) => (volume.filesystem === undefined ? [] : [volume.filesystem]))
    if (filesystems.length === 0) {
      return yield* new NotMountable({ device: disk.path, reason: `no filesystem this streamer mounts in the disk's volume group` })
    }
    const mounted: MountedDisk = {
      root,
      filesystems,
      rawRanges: lvm.flatMap((volume) => (volume.raw === undefined ? [] : [volume.raw])),
      layout: { kind: "volumes", diskBytes, volumes: lvm.map((volume) => volume.volume) }
    }
    return mounted
  })

/**
 * Mounts what a disk holds for the scope's lifetime, every journal replayed first.
 * - A filesystem on the whole disk: mounted, its tree at the archive's root (the layout
 *   archives had before partitions were laid out).
 * - A partition table (GPT or MBR): every partition. Those with a filesystem the streamer
 *   mounts become the directory `p<number>`; the others (no filesystem, swap, one that fails
 *   to mount) their exact bytes `p<number>.img`; LVM physical volumes their logical volumes,
 *   `lvm/<vg>/<lv>` (or `.img`). The disk's first bytes (the table, any boot code) become
 *   `disk-head.img`.
 * - A disk that is one LVM physical volume: its logical volumes the same way.
 * Fails with NotMountable when nothing could be mounted: the caller then archives the raw disk.
 */
export const mountDisk = (device: string, workDir: string): Effect.Effect<MountedDisk, NotMountable, Scope.Scope> =>
  Effect.gen(function* () {
    const path = yield* Effect.tryPromise({ try: () => realpath(device), catch: (error) => new NotMountable({ device, reason: String(error) }) })
    const disk: Disk = { path, readOnly: yield* isReadOnly(path) }
    const diskBytes = yield* sizeOf(path)
    const whole = yield* probe(path)
    if (mountOptionsFor(whole.type) !== undefined) {
      const mountPoint = yield* scratchDirectory(workDir, SCRATCH.mount)
      yield* mountAt(path, whole.type, mountPoint).pipe(Effect.mapError((error) => new NotMountable({ device, reason: reasonOf(error) })))
      const volume: ArchivedVolume = {
        name: "disk",
        filesystem: whole.type,
        ...(whole.uuid === undefined ? {} : { filesystemUuid: whole.uuid }),
        ...(whole.label === undefined ? {} : { filesystemLabel: whole.label }),
        archivedAs: "files",
        member: "."
      }
      const mounted: MountedDisk = {
        root: mountPoint,
        filesystems: [{ member: ".", mountPoint, source: path, fsType: whole.type }],
        rawRanges: [],
        layout: { kind: "filesystem", diskBytes, volumes: [volume] }
      }
      return mounted
    }
    if (whole.type === "LVM2_member") {
      return yield* mountWholeDiskVolumeGroup(disk, diskBytes, { name: "disk", device: path, bytes: diskBytes, probe: whole }, workDir)
    }
    // No partition table: sfdisk fails, and so does a table it cannot read.
    const table = yield* run("sfdisk", ["--json", path]).pipe(
      Effect.flatMap((output) => Effect.try(() => JSON.parse(output) as SfdiskTable)),
      Effect.orElseSucceed((): SfdiskTable => ({}))
    )
    if (table.partitiontable === undefined || (table.partitiontable.partitions ?? []).length === 0) {
      return yield* new NotMountable({ device, reason: `no filesystem this streamer mounts and no partition table (${whole.type || "nothing recognized"})` })
    }
    return yield* mountVolumes(disk, diskBytes, table.partitiontable, workDir)
  })
