import { mkdtemp, rm } from "node:fs/promises"
import { join } from "node:path"
import { Effect, Schema } from "effect"
import { run } from "./exec"

export class NotMountable extends Schema.TaggedError<NotMountable>()("NotMountable", {
  device: Schema.String,
  reason: Schema.String
}) {}

/** Filesystems the streamer mounts read-only, and the options that keep a mount from writing. */
const MOUNT_OPTIONS: Readonly<Record<string, string>> = {
  ext4: "ro,noload",
  ext3: "ro,noload",
  ext2: "ro",
  xfs: "ro,norecovery,nouuid",
  btrfs: "ro",
  vfat: "ro",
  ntfs: "ro"
}

export interface MountedFilesystem {
  readonly mountPoint: string
  readonly source: string
  readonly fsType: string
}

const filesystemOf = (device: string) =>
  run("blkid", ["-p", "-o", "value", "-s", "TYPE", device]).pipe(
    Effect.map((output) => output.trim()),
    Effect.orElseSucceed(() => "")
  )

const sizeOf = (device: string) =>
  run("blockdev", ["--getsize64", device]).pipe(
    Effect.map((output) => Number(output.trim())),
    Effect.orElseSucceed(() => 0)
  )

interface PartitionTable {
  readonly partitiontable?: { readonly sectorsize?: number; readonly partitions?: ReadonlyArray<{ readonly start: number; readonly size: number }> }
}

/** A loop device per partition of the disk's partition table (GPT or MBR), released with the scope. */
const partitionLoops = (device: string) =>
  Effect.gen(function* () {
    const table = yield* run("sfdisk", ["--json", device]).pipe(
      Effect.map((output): PartitionTable => JSON.parse(output) as PartitionTable),
      Effect.orElseSucceed((): PartitionTable => ({}))
    )
    const sector = table.partitiontable?.sectorsize ?? 512
    return yield* Effect.forEach(table.partitiontable?.partitions ?? [], (partition) =>
      Effect.acquireRelease(
        run("losetup", [
          "--find",
          "--show",
          "--read-only",
          `--offset=${partition.start * sector}`,
          `--sizelimit=${partition.size * sector}`,
          device
        ]).pipe(Effect.map((output) => output.trim())),
        (loop) => run("losetup", ["--detach", loop]).pipe(Effect.ignoreLogged)
      ).pipe(Effect.option)
    ).pipe(Effect.map((loops) => loops.flatMap((loop) => (loop._tag === "Some" ? [loop.value] : []))))
  })

/**
 * Mounts the filesystem of a disk read-only for the scope's lifetime: the whole disk when
 * it holds a filesystem, else its largest partition that does (as on a root volume).
 */
export const mountReadOnly = (device: string, workDir: string) =>
  Effect.gen(function* () {
    const names = yield* run("lsblk", ["--noheadings", "--raw", "--paths", "--output", "NAME", device]).pipe(
      Effect.map((output) => output.split("\n").map((line) => line.trim()).filter((line) => line.length > 0)),
      Effect.mapError((error) => new NotMountable({ device, reason: error.stderr }))
    )
    // Without kernel partition devices (no partition scanning in a container, say), each
    // partition in the table gets its own read-only loop device at its offset.
    const partitions = names.length > 1 ? [] : yield* partitionLoops(device)
    const candidates = yield* Effect.forEach([...names, ...partitions], (name) =>
      Effect.all({ name: Effect.succeed(name), fsType: filesystemOf(name), size: sizeOf(name) })
    )
    const mountable = candidates
      .filter((candidate) => MOUNT_OPTIONS[candidate.fsType] !== undefined)
      .sort((a, b) => b.size - a.size)[0]
    if (mountable === undefined) {
      const seen = candidates.map((candidate) => `${candidate.name}: ${candidate.fsType || "no filesystem"}`).join(", ")
      return yield* new NotMountable({ device, reason: `no filesystem this streamer mounts (${seen})` })
    }
    const mountPoint = yield* Effect.acquireRelease(
      Effect.promise(() => mkdtemp(join(workDir, "mnt-"))),
      (dir) => Effect.promise(() => rm(dir, { recursive: true, force: true }))
    )
    yield* Effect.acquireRelease(
      run("mount", ["-t", mountable.fsType, "-o", MOUNT_OPTIONS[mountable.fsType] ?? "ro", mountable.name, mountPoint]).pipe(
        Effect.mapError((error) => new NotMountable({ device, reason: error.stderr || `mount exited with ${error.exitCode}` }))
      ),
      () => run("umount", [mountPoint]).pipe(Effect.ignoreLogged)
    )
    const mounted: MountedFilesystem = { mountPoint, source: mountable.name, fsType: mountable.fsType }
    return mounted
  })
