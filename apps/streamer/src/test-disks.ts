import { execFileSync } from "node:child_process"
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync, writeSync } from "node:fs"
import { join } from "node:path"

/*
 * Disks for the tests that mount: filesystem images, GPT disk images, loop devices over them,
 * made with the host's own tools (the tests run as root).
 */

const MiB = 1024 * 1024

export const tool = (command: string, args: ReadonlyArray<string>, input?: string): string =>
  execFileSync(command, [...args], { stdio: "pipe", ...(input === undefined ? {} : { input }), env: { ...process.env, LVM_SUPPRESS_FD_WARNINGS: "1" } }).toString()

export const installed = (command: string): boolean => {
  try {
    tool("sh", ["-c", `command -v ${command}`])
    return true
  } catch {
    return false
  }
}

export const attach = (file: string, options: { readonly readOnly?: boolean; readonly offset?: number; readonly bytes?: number } = {}): string =>
  tool("losetup", [
    "--find",
    "--show",
    ...(options.readOnly === true ? ["--read-only"] : []),
    ...(options.offset === undefined ? [] : [`--offset=${options.offset}`]),
    ...(options.bytes === undefined ? [] : [`--sizelimit=${options.bytes}`]),
    file
  ]).trim()

export const detach = (loop: string): void => void tool("losetup", ["--detach", loop])

/** Loop devices whose backing file is the given file or device. */
export const loopsOver = (backing: string): ReadonlyArray<string> =>
  tool("losetup", ["--list", "--noheadings", "--raw", "--output", "NAME,BACK-FILE"])
    .split("\n")
    .filter((line) => line.split(" ")[1] === backing)
    .map((line) => line.split(" ")[0] ?? "")

export const mountsUnder = (directory: string): ReadonlyArray<string> =>
  readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .map((line) => line.split(" ")[4] ?? "")
    .filter((mountPoint) => mountPoint.startsWith(directory))

export const writeSynced = (path: string, content: string): void => {
  const fd = openSync(path, "w")
  writeSync(fd, content)
  fsyncSync(fd)
  closeSync(fd)
}

/**
 * A filesystem image holding `files`. With `journaled` files, these are written and fsync'ed
 * and the image is copied while the filesystem is still mounted: as a crash-consistent
 * snapshot has it, the last changes only in the journal (log), the filesystem marked as
 * needing recovery. Without, the image is copied once the filesystem is cleanly unmounted.
 */
export const filesystemImage = (scratch: string, name: string, type: "ext4" | "xfs", files: Record<string, string>, journaled: Record<string, string> = {}): string => {
  const clean = join(scratch, `${name}.clean`)
  const image = join(scratch, `${name}.img`)
  writeFileSync(clean, "")
  truncateSync(clean, type === "xfs" ? 300 * MiB : 16 * MiB)
  if (type === "ext4") tool("mkfs.ext4", ["-q", "-F", "-E", "lazy_itable_init=0,lazy_journal_init=0", clean])
  else tool("mkfs.xfs", ["-q", clean])
  const loop = attach(clean)
  const mountPoint = join(scratch, `${name}.mnt`)
  mkdirSync(mountPoint)
  try {
    tool("mount", ["-t", type, loop, mountPoint])
    try {
      for (const [path, content] of Object.entries(files)) writeFileSync(join(mountPoint, path), content)
      tool("sync", ["--file-system", mountPoint])
      for (const [path, content] of Object.entries(journaled)) writeSynced(join(mountPoint, path), content)
      if (Object.keys(journaled).length > 0) tool("cp", ["--sparse=always", clean, image])
    } finally {
      tool("umount", [mountPoint])
    }
    if (Object.keys(journaled).length === 0) tool("cp", ["--sparse=always", clean, image])
  } finally {
    detach(loop)
    rmSync(mountPoint, { recursive: true })
    rmSync(clean)
  }
  return image
}

export interface Partition {
  readonly image?: string
  readonly bytes?: number
  readonly type?: string
}

/** A GPT disk image with the partitions given, MiB-aligned, the first at 1 MiB; returns where each went. */
export const gptDisk = (scratch: string, name: string, partitions: ReadonlyArray<Partition>) => {
  const path = join(scratch, `${name}.disk`)
  let at = MiB
  const placed = partitions.map((partition) => {
    const bytes = Math.ceil(Math.max(partition.image === undefined ? 0 : statSync(partition.image).size, partition.bytes ?? MiB) / MiB) * MiB
    const start = at
    at += bytes
    return { ...partition, start, bytes }
  })
  writeFileSync(path, "")
  truncateSync(path, at + MiB)
  tool("sfdisk", ["--quiet", path], `label: gpt\n${placed.map((part) => `start=${part.start / 512}, size=${part.bytes / 512}, type=${part.type ?? "linux"}`).join("\n")}\n`)
  for (const part of placed) {
    if (part.image !== undefined) tool("dd", [`if=${part.image}`, `of=${path}`, "bs=1M", `seek=${part.start / MiB}`, "conv=notrunc,sparse", "status=none"])
  }
  return { path, partitions: placed }
}

