import type { ArchiveMode, Compression } from "@backup-actions/contracts"
import { extensionOf } from "./compress"

/** Where an archive and its manifest go in the artifact bucket. */
export const archiveKeys = (snapshotId: string, mode: ArchiveMode, format: "tar" | "raw", compression: Compression) => {
  const prefix = `archives/ebs/${snapshotId}/${mode}`
  const name = format === "tar" ? "files.tar" : "disk.img"
  return { archive: `${prefix}/${name}.${extensionOf(compression)}`, manifest: `${prefix}/manifest.ndjson` }
}

/** The ledger action of archiving in one mode. */
export const archiveAction = (mode: ArchiveMode): string => `archive:${mode}`
