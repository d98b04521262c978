import { createHash } from "node:crypto"
import { lstatSync, readdirSync, readFileSync, readlinkSync } from "node:fs"
import { join, posix } from "node:path"

/** What must survive an archive round trip, per path. */
export interface TreeFacts {
  readonly type: string
  readonly mode: number
  readonly uid: number
  readonly gid: number
  readonly size: number
  readonly mtimeSeconds: number | undefined
  readonly sha256: string | undefined
  readonly target: string | undefined
  /** Paths that share this entry's inode (hard links), sorted; empty when it has one name. */
  readonly links: ReadonlyArray<string>
}

/** Describes a directory tree for comparison; `ignore` names top-level entries to leave out. */
export const treeFacts = (root: string, ignore: ReadonlyArray<string> = []): Map<string, TreeFacts> => {
  const facts = new Map<string, TreeFacts>()
  const inodes = new Map<number, Array<string>>()
  const visit = (relative: string): void => {
    const absolute = relative === "" ? root : join(root, relative)
    const stats = lstatSync(absolute)
    const type = stats.isFile() ? "file" : stats.isDirectory() ? "directory" : stats.isSymbolicLink() ? "symlink" : "other"
    if (relative !== "") {
      if (type === "file") inodes.set(stats.ino, [...(inodes.get(stats.ino) ?? []), relative])
      facts.set(relative, {
        type,
        mode: stats.mode & 0o7777,
        uid: stats.uid,
        gid: stats.gid,
        size: type === "file" ? stats.size : 0,
        mtimeSeconds: type === "file" ? Math.floor(stats.mtimeMs / 1000) : undefined,
        sha256: type === "file" ? createHash("sha256").update(readFileSync(absolute)).digest("hex") : undefined,
        target: type === "symlink" ? readlinkSync(absolute) : undefined,
        links: []
      })
    }
    if (type === "directory") {
      for (const child of readdirSync(absolute).sort()) {
        if (relative === "" && ignore.includes(child)) continue
        visit(relative === "" ? child : posix.join(relative, child))
      }
    }
  }
  visit("")
  for (const paths of inodes.values()) {
    if (paths.length < 2) continue
    for (const path of paths) {
      const entry = facts.get(path)
      if (entry !== undefined) facts.set(path, { ...entry, links: [...paths].sort() })
    }
  }
  return facts
}
