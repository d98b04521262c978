import { availableParallelism } from "node:os"
import { promisify } from "node:util"
import { constants, gzip, zstdCompress } from "node:zlib"
import { Effect } from "effect"
import { COMPRESSED_FRAME_POINT, firedAction } from "@backup-actions/aws"
import type { Compression } from "@backup-actions/contracts"

const zstdAsync = promisify(zstdCompress)
const gzipAsync = promisify(gzip)

export const ZSTD_LEVEL = 3
export const GZIP_LEVEL = 6
const OUTPUT_CHUNK = 1024 * 1024

/**
 * Compresses one chunk into a complete, independent frame (a zstd frame or a gzip member).
 * Frames concatenate into a valid stream that stock `zstd -d` and `gzip -d` read whole,
 * and since each runs on libuv's thread pool, several chunks compress at once on all cores.
 */
export const compressChunk = (chunk: Uint8Array, compression: Compression): Effect.Effect<Buffer> =>
  Effect.promise(() => {
    const input = firedAction(COMPRESSED_FRAME_POINT) === "corrupt" ? corrupted(chunk) : chunk
    return compression === "zstd"
      ? zstdAsync(input, {
          // One output buffer for the whole frame: the default 16 KiB means hundreds of thread-pool round trips per chunk.
          chunkSize: OUTPUT_CHUNK,
          params: { [constants.ZSTD_c_compressionLevel]: ZSTD_LEVEL, [constants.ZSTD_c_checksumFlag]: 1 }
        })
      : gzipAsync(input, { level: GZIP_LEVEL, chunkSize: OUTPUT_CHUNK })
  })

/** The fault suite's corrupt frame: the chunk with its first byte inverted, compressed as well as any other. */
const corrupted = (chunk: Uint8Array): Uint8Array => {
  const copy = Uint8Array.from(chunk)
  if (copy.length > 0) copy[0] = (copy[0] ?? 0) ^ 0xff
  return copy
}

export const extensionOf = (compression: Compression): string => (compression === "zstd" ? "zst" : "gz")
export const contentTypeOf = (compression: Compression): string =>
  compression === "zstd" ? "application/zstd" : "application/gzip"

/**
 * Chunks compressing at once: one per core. More would only hold more chunks in memory
 * while they wait for a core.
 */
export const COMPRESS_CONCURRENCY = Math.max(2, availableParallelism())

/** Buffers a reading source needs: one per chunk compressing, one being read, one spare. */
export const SOURCE_BUFFERS = COMPRESS_CONCURRENCY + 2
