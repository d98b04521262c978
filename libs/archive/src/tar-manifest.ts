import type { TreeEntry } from "./manifest"
import type { TarEntry } from "./tar-scan"

/** A mode as a file-level manifest writes it: four octal digits. */
export const manifestMode = (mode: number): string => mode.toString(8).padStart(4, "0")

/**
 * The manifest line of an entry scanned from a tar. A hard link is listed as the file it is,
 * with `linkOf` naming the first path of the same file and, since the tar holds its data
 * only once, the size that `linkedSize` gives (the first path's). `tarStart` is where the tar
 * begins in the archive's uncompressed stream (after members written before it), so that
 * `offset` is the entry's place in the whole archive.
 */
export const manifestEntryOf = (entry: TarEntry, linkedSize: (path: string) => number, tarStart = 0): TreeEntry => {
  const common = {
    path: entry.path,
    offset: tarStart + entry.headerOffset,
    mode: manifestMode(entry.mode),
    uid: entry.uid,
    gid: entry.gid,
    mtime: new Date(entry.mtimeMs).toISOString()
  }
  switch (entry.type) {
    case "hardlink": {
      const first = entry.linkTarget ?? ""
      return { ...common, type: "file", size: linkedSize(first), linkOf: first }
    }
    case "file":
      return { ...common, type: "file", size: entry.size, ...(entry.sha256 === undefined ? {} : { sha256: entry.sha256 }) }
    case "symlink":
      return { ...common, type: "symlink", size: 0, target: entry.linkTarget ?? "" }
    case "directory":
    case "other":
      return { ...common, type: entry.type, size: 0 }
  }
}
