import { createHash } from "node:crypto"
import { createReadStream } from "node:fs"

/**
 * The SHA-256 that a file-level archive manifest records for a regular file, as lowercase hex.
 * The streamer writes it and `verify` recomputes it from the extracted tree; one function keeps
 * the two from ever disagreeing on how a file is hashed. Streamed, so a file of any size costs
 * one MiB of memory.
 */
export const sha256OfFile = (path: string): Promise<string> =>
  new Promise((resolve, reject) => {
    const hash = createHash("sha256")
    createReadStream(path, { highWaterMark: 1024 * 1024 })
      .on("data", (data) => hash.update(data))
      .on("error", reject)
      .on("end", () => resolve(hash.digest("hex")))
  })
