import { createHash, randomBytes } from "node:crypto"
import { execFileSync } from "node:child_process"
import { chmodSync, chownSync, closeSync, fsyncSync, linkSync, mkdirSync, openSync, readSync, rmSync, statSync, symlinkSync, truncateSync, utimesSync, writeFileSync, writeSync } from "node:fs"
import { join } from "node:path"

const MiB = 1024 * 1024

/** Text that compresses like real files do: words from a small vocabulary, deterministic per seed. */
const prose = (bytes: number, seed: number): Buffer => {
  const words = ["backup", "volume", "snapshot", "archive", "restore", "ledger", "event", "bucket", "region", "account", "policy", "checksum", "stream", "part", "block", "tar"]
  const out = Buffer.alloc(bytes)
  let state = seed >>> 0
  let at = 0
  while (at < bytes) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0
    const word = words[state % words.length] ?? "x"
    at += out.write(`${word}${state % 7 === 0 ? "\n" : " "}`, at)
  }
  return out
}

/**
 * Writes the source tree the demo and the tests archive: a several-MB file, many small
 * files, symlinks, a hard link, a sparse file, an empty directory, non-ASCII names, and
 * a spread of modes, owners and times.
 */
export const writeSourceTree = (root: string, options: { readonly largeFileBytes?: number; readonly smallFiles?: number } = {}): void => {
  mkdirSync(root, { recursive: true })
  const time = new Date("2026-01-02T03:04:05Z")
  mkdirSync(join(root, "data"))
  writeFileSync(join(root, "data", "large.bin"), Buffer.concat([prose((options.largeFileBytes ?? 6 * MiB) / 2, 1), randomBytes((options.largeFileBytes ?? 6 * MiB) / 2)]))
  mkdirSync(join(root, "small"))
  for (let index = 0; index < (options.smallFiles ?? 300); index += 1) {
    writeFileSync(join(root, "small", `file-${String(index).padStart(4, "0")}.txt`), prose(100 + ((index * 37) % 4000), index))
  }
  mkdirSync(join(root, "links"))
  symlinkSync("../data/large.bin", join(root, "links", "relative-link"))
  symlinkSync("/nonexistent/target", join(root, "links", "dangling-link"))
  linkSync(join(root, "small", "file-0001.txt"), join(root, "links", "hardlink-to-file-0001.txt"))
  const sparse = join(root, "data", "sparse.img")
  const fd = openSync(sparse, "w")
  writeSync(fd, Buffer.from("start of sparse file\n"), 0, undefined, 0)
  writeSync(fd, Buffer.from("middle\n"), 0, undefined, 8 * MiB)
  closeSync(fd)
  truncateSync(sparse, 16 * MiB)
  mkdirSync(join(root, "empty-directory"))
  mkdirSync(join(root, "café", "naïve 文件"), { recursive: true })
  writeFileSync(join(root, "café", "naïve 文件", "résumé — ünïcödé.txt"), "non-ASCII names survive\n")
  const secret = join(root, "data", "owner-only.txt")
  writeFileSync(secret, "mode 0600, owned by 1001:1002\n")
  chmodSync(secret, 0o600)
  chownSync(secret, 1001, 1002)
  const script = join(root, "data", "run.sh")
  writeFileSync(script, "#!/bin/sh\necho archived\n")
  chmodSync(script, 0o755)
  chmodSync(join(root, "empty-directory"), 0o700)
  for (const path of [secret, script, join(root, "data", "large.bin"), sparse]) utimesSync(path, time, time)
}

/** An ext4 filesystem image made from a directory tree with `mkfs.ext4 -d`. */
export const makeExt4Image = (tree: string, image: string, sizeMiB: number): void => {
  writeFileSync(image, "")
  truncateSync(image, sizeMiB * MiB)
  execFileSync("mkfs.ext4", ["-q", "-F", "-b", "4096", "-E", "lazy_itable_init=0,lazy_journal_init=0", "-d", tree, image], { stdio: "pipe" })
}

/** One partition of a seeded disk: a filesystem image copied into it, or `bytes` of its own. */
export interface SeededPartition {
  /** An image to copy into the partition; the partition is its size, rounded up to a MiB. */
  readonly image?: string
  /** The partition's size when there is no image, or to make it larger than its image. */
  readonly bytes?: number
  /** An sfdisk type alias (linux, lvm, swap) or a GPT type GUID; linux by default. */
  readonly type?: string
  /** The GPT partition name. */
  readonly name?: string
}

/** Where a seeded disk's partitions went, in bytes. */
export interface SeededDisk {
  readonly partitions: ReadonlyArray<{ readonly number: number; readonly startBytes: number; readonly sizeBytes: number }>
}

/**
 * A GPT disk with the given partitions, in order, each starting on a MiB boundary (the first
 * at 1 MiB), with a MiB spare at the end for the backup table; images are copied in sparse.
 */
export const makeDisk = (disk: string, partitions: ReadonlyArray<SeededPartition>): SeededDisk => {
  let at = MiB
  const placed = partitions.map((partition, index) => {
    const imageBytes = partition.image === undefined ? 0 : statSync(partition.image).size
    const sizeBytes = Math.ceil(Math.max(imageBytes, partition.bytes ?? 0, MiB) / MiB) * MiB
    const start = at
    at += sizeBytes
    return { number: index + 1, startBytes: start, sizeBytes, partition }
  })
  writeFileSync(disk, "")
  truncateSync(disk, at + MiB)
  const script = placed
    .map(({ startBytes, sizeBytes, partition }) =>
      [`start=${startBytes / 512}`, `size=${sizeBytes / 512}`, `type=${partition.type ?? "linux"}`, ...(partition.name === undefined ? [] : [`name="${partition.name}"`])].join(", ")
    )
    .join("\n")
  execFileSync("sfdisk", ["--quiet", disk], { input: `label: gpt\n${script}\n` })
  for (const { startBytes, partition } of placed) {
    if (partition.image === undefined) continue
    execFileSync("dd", [`if=${partition.image}`, `of=${disk}`, "bs=1M", `seek=${startBytes / MiB}`, "conv=notrunc,sparse", "status=none"])
  }
  return { partitions: placed.map(({ number, startBytes, sizeBytes }) => ({ number, startBytes, sizeBytes })) }
}

/** A GPT-partitioned disk whose one partition (starting at 1 MiB) holds the given filesystem image. */
export const makePartitionedDisk = (filesystemImage: string, disk: string): SeededDisk => makeDisk(disk, [{ image: filesystemImage }])

/** A GPT disk of two partitions, each holding one of the given filesystem images (named "first" and "second"). */
export const makeTwoPartitionDisk = (first: string, second: string, disk: string): SeededDisk =>
  makeDisk(disk, [
    { image: first, name: "first" },
    { image: second, name: "second" }
  ])

/** Whether LVM's tools are installed (they are needed to seed a volume group). */
export const hasLvm = (): boolean => {
  try {
    execFileSync("lvm", ["version"], { stdio: "pipe" })
    return true
  } catch {
    return false
  }
}

/** A writable loop device over a byte range of a file, for the seeders; detach it with `detachLoop`. */
const attachLoop = (file: string, offset = 0, sizeBytes?: number): string =>
  execFileSync("losetup", ["--find", "--show", `--offset=${offset}`, ...(sizeBytes === undefined ? [] : [`--sizelimit=${sizeBytes}`]), file]).toString().trim()

const detachLoop = (loop: string): void => {
  execFileSync("losetup", ["--detach", loop])
}

/**
 * Turns a partition of a seeded disk into an LVM physical volume with one volume group and one
 * linear logical volume holding a filesystem image. Nothing is activated (device-mapper is not
 * needed, nor touched): the metadata is written with the partition as the only device LVM
 * sees, and the image is copied to where the logical volume's extents lie. Returns the byte
 * offset of the logical volume on the disk.
 */
export const makeLogicalVolume = (
  disk: string,
  partition: { readonly startBytes: number; readonly sizeBytes: number },
  options: { readonly volumeGroup: string; readonly logicalVolume: string; readonly image: string }
): number => {
  const loop = attachLoop(disk, partition.startBytes, partition.sizeBytes)
  try {
    const lvm = (...args: ReadonlyArray<string>) =>
      execFileSync("lvm", [args[0] ?? "", "--driverloaded", "n", "--devices", loop, ...args.slice(1)], {
        stdio: "pipe",
        env: { ...process.env, LVM_SUPPRESS_FD_WARNINGS: "1" }
      }).toString()
    const imageBytes = statSync(options.image).size
    lvm("pvcreate", "--quiet", loop)
    lvm("vgcreate", "--quiet", "--autobackup", "n", options.volumeGroup, loop)
    lvm("lvcreate", "--quiet", "--autobackup", "n", "--activate", "n", "--zero", "n", "--wipesignatures", "n", "--size", `${imageBytes}b`, "--name", options.logicalVolume, options.volumeGroup)
    const pv = JSON.parse(lvm("pvs", "--reportformat", "json", "--units", "b", "--nosuffix", "-o", "pe_start"))
    const lv = JSON.parse(lvm("lvs", "--reportformat", "json", "-o", "seg_pe_ranges,vg_extent_size", "--units", "b", "--nosuffix", `${options.volumeGroup}/${options.logicalVolume}`))
    const peStart = Number(pv.report[0].pv[0].pe_start)
    const extentBytes = Number(lv.report[0].lv[0].vg_extent_size)
    const firstExtent = Number(/:(\d+)-/.exec(String(lv.report[0].lv[0].seg_pe_ranges))?.[1])
    const offset = partition.startBytes + peStart + firstExtent * extentBytes
    execFileSync("dd", [`if=${options.image}`, `of=${disk}`, "bs=1M", `seek=${offset}`, "oflag=seek_bytes", "conv=notrunc,sparse", "status=none"])
    return offset
  } finally {
    detachLoop(loop)
  }
}

/**
 * An ext4 image (made from a tree) as a crash leaves it: a file written and fsync'ed, so its
 * data and its metadata are in the journal, and the image copied while the filesystem is still
 * mounted, before the journal's changes reach their place on disk. The copy needs recovery
 * (the `needs_recovery` feature): mounted without replaying the journal (`noload`) it lacks
 * the file; mounted as the kernel replays it, it has it.
 */
export const makeExt4NeedingRecovery = (
  tree: string,
  image: string,
  sizeMiB: number,
  journaled: { readonly path: string; readonly content: Buffer }
): void => {
  const clean = `${image}.clean`
  makeExt4Image(tree, clean, sizeMiB)
  const loop = attachLoop(clean)
  const mountPoint = `${image}.mnt`
  mkdirSync(mountPoint, { recursive: true })
  try {
    execFileSync("mount", ["-t", "ext4", loop, mountPoint])
    try {
      const fd = openSync(join(mountPoint, journaled.path), "w")
      writeSync(fd, journaled.content)
      fsyncSync(fd)
      closeSync(fd)
      execFileSync("cp", ["--sparse=always", clean, image])
    } finally {
      execFileSync("umount", [mountPoint])
    }
  } finally {
    detachLoop(loop)
    rmSync(mountPoint, { recursive: true, force: true })
    rmSync(clean, { force: true })
  }
}

export const sha256OfFile = (path: string): string => {
  const hash = createHash("sha256")
  const fd = openSync(path, "r")
  const buffer = Buffer.alloc(4 * MiB)
  for (let read = readSync(fd, buffer); read > 0; read = readSync(fd, buffer)) hash.update(buffer.subarray(0, read))
  closeSync(fd)
  return hash.digest("hex")
}

