import { createHash, randomBytes } from "node:crypto"
import { execFileSync } from "node:child_process"
import { chmodSync, chownSync, linkSync, mkdirSync, openSync, closeSync, readSync, statSync, symlinkSync, utimesSync, writeFileSync, writeSync, truncateSync } from "node:fs"
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

/** A GPT-partitioned disk whose one partition (starting at 1 MiB) holds the given filesystem image. */
export const makePartitionedDisk = (filesystemImage: string, disk: string): void => {
  const fsBytes = statSync(filesystemImage).size
  writeFileSync(disk, "")
  truncateSync(disk, fsBytes + 2 * MiB)
  execFileSync("sfdisk", ["--quiet", disk], { input: `label: gpt\nstart=2048, size=${fsBytes / 512}, type=linux\n` })
  execFileSync("dd", [`if=${filesystemImage}`, `of=${disk}`, "bs=1M", "seek=1", "conv=notrunc,sparse", "status=none"])
}

export const sha256OfFile = (path: string): string => {
  const hash = createHash("sha256")
  const fd = openSync(path, "r")
  const buffer = Buffer.alloc(4 * MiB)
  for (let read = readSync(fd, buffer); read > 0; read = readSync(fd, buffer)) hash.update(buffer.subarray(0, read))
  closeSync(fd)
  return hash.digest("hex")
}

