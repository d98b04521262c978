import type { Readable } from "node:stream"
import { decompress } from "./archive-object"

const messageOf = (error: unknown): string => (error instanceof Error ? error.message : String(error))

/** How reading an archive through its decompressor went. */
export interface ReadThrough {
  /** Why the content could not be read to its end: the consumer's reason first, else the decompressor's. */
  readonly failure: string | undefined
}

/**
 * Decompresses an archive stream into `onContent`, then reads whatever is left of the archive
 * (after a failure too), so that the checksum over the archive's bytes is always complete.
 * A consumer error stops decompression; it is reported rather than the decompressor's
 * complaint about the closed pipe that follows from it.
 */
export const readThrough = async (
  archive: Readable,
  compression: "zstd" | "gzip",
  onContent: (content: Readable) => Promise<void>
): Promise<ReadThrough> => {
  const decompression = decompress(compression, archive)
  let contentError: string | undefined
  const consumed = onContent(decompression.output).catch((error: unknown) => {
    contentError = messageOf(error)
    decompression.output.destroy()
  })
  const [, decompressed] = await Promise.allSettled([consumed, decompression.done])
  const failure = contentError ?? (decompressed.status === "rejected" ? messageOf(decompressed.reason) : undefined)
  if (!archive.readableEnded && !archive.destroyed) {
    archive.unpipe()
    // Read the rest only for the checksum; a broken body ends the loop with its error.
    for await (const _chunk of archive) void _chunk
  }
  return { failure }
}
