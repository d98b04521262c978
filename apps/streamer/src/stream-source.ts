import { createHash } from "node:crypto"
import type { Readable } from "node:stream"
import { Effect, Option, Schema } from "effect"
import type { ChunkJob, ChunkSource } from "./archive-pipeline"
import { CHUNK_BYTES } from "./ebs-direct-source"

export class SourceReadError extends Schema.TaggedError<SourceReadError>()("SourceReadError", {
  source: Schema.String,
  reason: Schema.String
}) {}

const isAllZero = (buffer: Buffer): boolean => {
  // Compare 8 bytes at a time; a disk image is mostly either data or long runs of zeros.
  const words = Math.floor(buffer.length / 8)
  for (let index = 0; index < words; index += 1) if (buffer.readBigUInt64LE(index * 8) !== 0n) return false
  for (let index = words * 8; index < buffer.length; index += 1) if (buffer[index] !== 0) return false
  return true
}

/**
 * A Node stream cut into 4 MiB chunks, read strictly in order. With `detectHoles`, chunks
 * of zeros are reported as holes (compressed once, cached) and the manifest gets a line per
 * chunk with data, as for disk images.
 */
export const streamChunkSource = (
  name: string,
  stream: Readable,
  options: { readonly detectHoles: boolean; readonly startOffset?: number }
): ChunkSource<SourceReadError> => {
  const iterator = stream[Symbol.asyncIterator]()
  let carry: Buffer = Buffer.alloc(0)
  let done = false
  let offset = options.startOffset ?? 0
  const readChunk = Effect.tryPromise({
    try: async (): Promise<Buffer | undefined> => {
      const pieces: Array<Buffer> = carry.length > 0 ? [carry] : []
      let size = carry.length
      while (size < CHUNK_BYTES && !done) {
        const next = await iterator.next()
        if (next.done === true) {
          done = true
          break
        }
        const piece = Buffer.isBuffer(next.value) ? next.value : Buffer.from(next.value as Uint8Array)
        pieces.push(piece)
        size += piece.length
      }
      if (size === 0) return undefined
      const joined = pieces.length === 1 ? (pieces[0] as Buffer) : Buffer.concat(pieces, size)
      carry = joined.subarray(Math.min(CHUNK_BYTES, joined.length))
      return joined.subarray(0, Math.min(CHUNK_BYTES, joined.length))
    },
    catch: (error) => new SourceReadError({ source: name, reason: String(error) })
  })
  return {
    pull: Effect.map(readChunk, (chunk) => {
      if (chunk === undefined) return Option.none()
      const at = offset
      offset += chunk.length
      const job: ChunkJob<SourceReadError> = {
        inputBytes: chunk.length,
        produce: Effect.sync(() => {
          if (!options.detectHoles) return { bytes: Option.some(chunk), manifestLines: [] }
          if (isAllZero(chunk)) return { bytes: Option.none(), manifestLines: [] }
          const sha256 = createHash("sha256").update(chunk).digest("base64")
          return { bytes: Option.some(chunk), manifestLines: [JSON.stringify({ offset: at, length: chunk.length, sha256 })] }
        })
      }
      return Option.some(job)
    })
  }
}
