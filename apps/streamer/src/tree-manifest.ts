import { lstat, readdir, readlink } from "node:fs/promises"
import { join, posix } from "node:path"
import { Effect } from "effect"
import { sha256OfFile } from "@backup-actions/contracts"
import { SourceReadError } from "./stream-source"

/** One line of a file-level manifest. */
export interface TreeEntry {
  readonly path: string
  readonly type: "file" | "directory" | "symlink" | "other"
  readonly mode: string
  readonly uid: number
  readonly gid: number
  readonly size: number
  readonly mtime: string
  readonly sha256?: string
  readonly target?: string
  /** For a hard link: the first path of the same inode. */
  readonly linkOf?: string
}

/**
 * Walks a mounted filesystem (not crossing into other mounts) and describes every entry:
 * its type, mode, owner, size, time, link target, and the SHA-256 of each regular file.
 */
export const describeTree = (root: string) =>
  Effect.tryPromise({
    try: async () => {
      const entries: Array<TreeEntry> = []
      const inodes = new Map<string, string>()
      const rootDevice = (await lstat(root)).dev
      const visit = async (relative: string): Promise<void> => {
        const absolute = relative === "." ? root : join(root, relative)
        const stats = await lstat(absolute, { bigint: false })
        const type = stats.isFile() ? "file" : stats.isDirectory() ? "directory" : stats.isSymbolicLink() ? "symlink" : "other"
        const common = {
          path: relative,
          type,
          mode: (stats.mode & 0o7777).toString(8).padStart(4, "0"),
          uid: stats.uid,
          gid: stats.gid,
          size: type === "file" ? stats.size : 0,
          mtime: stats.mtime.toISOString()
        } as const
        if (type === "file") {
          const inode = `${stats.dev}:${stats.ino}`
          const first = stats.nlink > 1 ? inodes.get(inode) : undefined
          if (first !== undefined) entries.push({ ...common, linkOf: first })
          else {
            if (stats.nlink > 1) inodes.set(inode, relative)
            entries.push({ ...common, sha256: await sha256OfFile(absolute) })
          }
        } else if (type === "symlink") {
          entries.push({ ...common, target: await readlink(absolute) })
        } else {
          entries.push(common)
        }
        if (type === "directory" && stats.dev === rootDevice) {
          const children = (await readdir(absolute)).sort()
          for (const child of children) await visit(relative === "." ? child : posix.join(relative, child))
        }
      }
      await visit(".")
      return entries
    },
    catch: (error) => new SourceReadError({ source: root, reason: `cannot walk the filesystem: ${String(error)}` })
  })
