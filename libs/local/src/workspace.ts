import { existsSync } from "node:fs"
import { dirname, join, resolve } from "node:path"
import { fileURLToPath } from "node:url"

/** The workspace root: the nearest folder above this file that holds nx.json. */
export const workspaceRoot = (): string => {
  let dir = dirname(fileURLToPath(import.meta.url))
  while (!existsSync(join(dir, "nx.json"))) {
    const parent = resolve(dir, "..")
    if (parent === dir) throw new Error("backup-actions: cannot find the workspace root (no nx.json above this file)")
    dir = parent
  }
  return dir
}

/** Where the project keeps local state (logs, the stack description, scratch files). */
export const localStateDir = (): string => join(workspaceRoot(), ".local")
