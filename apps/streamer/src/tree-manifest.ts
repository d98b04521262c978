import { closeSync, lstatSync, openSync, writeSync } from "node:fs"
import { join } from "node:path"
import { Effect } from "effect"
import { TarScanner, manifestEntryOf, readLines, type TarEntry } from "@backup-actions/archive"
import { SourceReadError } from "./stream-source"

/** Lines are written to the spool file in batches of about this many bytes. */
const SPOOL_BATCH_BYTES = 1024 * 1024

/** What a tar's manifest counted once the tar ended. */
export interface TreeManifestTotals {
  readonly entries: number
  /** The bytes of every regular file (a hard link's counted once, at its first path). */
  readonly fileBytes: number
}

/**
 * A file-level manifest made from the tar stream as it flows to the upload, so that every
 * file is read once, by tar: the scanner sees the bytes tar wrote, in order, and writes one
 * line per entry (type, mode, owner, size, time, link, and each regular file's SHA-256) to a
 * spool file on local disk. Nothing per entry stays in memory, whatever the number of files.
 */
export interface TreeManifest {
  /** Sees every byte of tar's output, in order; throws when it is not a tar. */
  readonly onRead: (chunk: Buffer) => void
  /** Once the tar ended: checks it ended as a tar does, writes out the last lines, and counts. */
  readonly finish: Effect.Effect<TreeManifestTotals, SourceReadError>
  /** The lines, read back from the spool one buffer at a time; only after `finish`. */
  readonly lines: () => Iterable<string>
}

/**
 * The manifest of a tar made with `--directory=root`: a hard link's size is its first path's,
 * which `lstat` finds under `root` (the tar holds a hard link's data once, at that path). Each
 * entry's offset counts from the archive's start, where the tar begins at `tarStart`. The
 * spool file is closed with the scope; the caller's scratch directory holds it.
 */
export const treeManifestOfTar = (root: string, spoolFile: string, tarStart = 0) =>
  Effect.gen(function* () {
    const spool = yield* Effect.acquireRelease(
      Effect.try({ try: () => openSync(spoolFile, "w"), catch: (error) => new SourceReadError({ source: spoolFile, reason: `cannot write the manifest's spool: ${String(error)}` }) }),
      (descriptor) => Effect.sync(() => closeSync(descriptor))
    )
    let batch: Array<string> = []
    let batchBytes = 0
    let entries = 0
    let fileBytes = 0
    const flush = () => {
      if (batch.length === 0) return
      writeSync(spool, batch.join(""))
      batch = []
      batchBytes = 0
    }
    const linkedSize = (path: string): number => lstatSync(join(root, path)).size
    const scanner = new TarScanner((entry: TarEntry) => {
      const line = `${JSON.stringify(manifestEntryOf(entry, linkedSize, tarStart))}\n`
      entries += 1
      if (entry.type === "file") fileBytes += entry.size
      batch.push(line)
      batchBytes += line.length
      if (batchBytes >= SPOOL_BATCH_BYTES) flush()
    })
    const manifest: TreeManifest = {
      onRead: (chunk) => scanner.push(chunk),
      finish: Effect.try({
        try: () => {
          scanner.end()
          flush()
          return { entries, fileBytes }
        },
        catch: (error) => new SourceReadError({ source: "tar", reason: `its output cannot be listed in the manifest: ${String(error)}` })
      }),
      lines: () => readLines(spoolFile)
    }
    return manifest
  })
