import type { Readable } from "node:stream"
import { createHash } from "node:crypto"
import { open } from "node:fs/promises"
import { Effect, Option, Queue, Schema } from "effect"
import type { ChunkJob, ChunkSource } from "./archive-pipeline"
import { CHUNK_BYTES } from "./ebs-direct-source"
import { spawnTool, type RunningTool, type SpawnRequest } from "./exec"

export class SourceReadError extends Schema.TaggedError<SourceReadError>()("SourceReadError", {
  source: Schema.String,
  reason: Schema.String
}) {}

const ZERO_CHUNK = Buffer.alloc(CHUNK_BYTES)

/** A native compare against zeros: disk images are mostly either data or long runs of zeros. */
const isAllZero = (buffer: Buffer): boolean =>
  buffer.length === CHUNK_BYTES ? buffer.equals(ZERO_CHUNK) : buffer.equals(ZERO_CHUNK.subarray(0, buffer.length))

/** SHA-256 in place: about 1 GB/s on one core, and no copy of the chunk (WebCrypto would make one). */
export const sha256Base64 = (data: Uint8Array): Effect.Effect<string> =>
  Effect.sync(() => createHash("sha256").update(data).digest("base64"))

/**
 * A Node stream cut into 4 MiB chunks, read strictly in order. With `detectHoles`, chunks
 * of zeros are reported as holes (compressed once, cached) and the manifest gets a line per
 * chunk with data, as for disk images.
 */
export const streamChunkSource = (
  name: string,
  stream: Readable,
  options: {
    readonly detectHoles: boolean
    readonly startOffset?: number
    /** Sees every byte of the stream, in order, as it is read (a checksum of the source taken before compression). */
    readonly onRead?: (chunk: Buffer) => void
  }
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
      const chunk = joined.subarray(0, Math.min(CHUNK_BYTES, joined.length))
      options.onRead?.(chunk)
      return chunk
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
        produce: Effect.suspend(() => {
          if (!options.detectHoles) return Effect.succeed({ bytes: Option.some(chunk), manifestLines: [] })
          if (isAllZero(chunk)) return Effect.succeed({ bytes: Option.none(), manifestLines: [] })
          return Effect.map(sha256Base64(chunk), (sha256) => ({
            bytes: Option.some(chunk),
            manifestLines: [JSON.stringify({ offset: at, length: chunk.length, sha256 })]
          }))
        })
      }
      return Option.some(job)
    })
  }
}

/**
 * A source whose end of input is reported only once `ended` succeeds. A tool's output ends
 * before its exit status is known, and a tool killed half-way ends its output like one that
 * finished: without this, the pipeline would complete the upload of a truncated archive.
 */
export const endingWhen = <E1, E2>(source: ChunkSource<E1>, ended: Effect.Effect<void, E2>): ChunkSource<E1 | E2> => ({
  pull: Effect.flatMap(
    source.pull,
    (next): Effect.Effect<Option.Option<ChunkJob<E1 | E2>>, E2> => (Option.isSome(next) ? Effect.succeed(next) : Effect.as(ended, Option.none()))
  )
})

/**
 * A streaming tool's standard output as a chunk source, the tool tied to the scope (stopped
 * and awaited when it closes). The end of input is reported only once `exitedWell` succeeds
 * on the ended tool: it fails on an exit that is not 0, a signal or a timeout, and so does
 * the source.
 */
export const toolChunkSource = <E>(
  request: SpawnRequest,
  options: { readonly detectHoles: boolean; readonly onRead?: (chunk: Buffer) => void },
  exitedWell: (tool: RunningTool) => Effect.Effect<void, E>
) =>
  Effect.map(spawnTool(request), (tool): ChunkSource<SourceReadError | E> =>
    endingWhen(streamChunkSource(tool.tool, tool.stdout, options), exitedWell(tool))
  )

/**
 * A file or block device read in 4 MiB chunks into a fixed ring of reusable buffers: a
 * buffer goes back to the ring once its chunk is compressed, so reading makes no garbage
 * and memory stays at `buffers` chunks whatever the input size.
 */
export const fileChunkSource = (
  path: string,
  size: number,
  options: { readonly detectHoles: boolean; readonly buffers: number; readonly startOffset?: number }
) =>
  Effect.gen(function* () {
    const handle = yield* Effect.acquireRelease(
      Effect.tryPromise({ try: () => open(path, "r"), catch: (error) => new SourceReadError({ source: path, reason: String(error) }) }),
      (file) => Effect.promise(() => file.close())
    )
    const free = yield* Queue.bounded<Buffer>(options.buffers)
    yield* Queue.offerAll(free, Array.from({ length: options.buffers }, () => Buffer.allocUnsafe(CHUNK_BYTES)))
    let offset = options.startOffset ?? 0
    const source: ChunkSource<SourceReadError> = {
      pull: Effect.gen(function* () {
        if (offset >= size) return Option.none()
        const at = offset
        const length = Math.min(CHUNK_BYTES, size - at)
        offset += length
        const buffer = yield* Queue.take(free)
        const read = yield* Effect.tryPromise({
          try: () => handle.read(buffer, 0, length, at),
          catch: (error) => new SourceReadError({ source: path, reason: String(error) })
        })
        if (read.bytesRead !== length) {
          yield* Queue.offer(free, buffer)
          return yield* new SourceReadError({ source: path, reason: `short read at ${at}: ${read.bytesRead} of ${length} bytes` })
        }
        const chunk = buffer.subarray(0, length)
        const job: ChunkJob<SourceReadError> = {
          inputBytes: length,
          release: Queue.offer(free, buffer).pipe(Effect.asVoid),
          produce: Effect.suspend(() => {
            if (options.detectHoles && isAllZero(chunk)) return Effect.succeed({ bytes: Option.none(), manifestLines: [] })
            if (!options.detectHoles) return Effect.succeed({ bytes: Option.some(chunk), manifestLines: [] })
            return Effect.map(sha256Base64(chunk), (sha256) => ({
              bytes: Option.some(chunk),
              manifestLines: [JSON.stringify({ offset: at, length, sha256 })]
            }))
          })
        }
        return Option.some(job)
      })
    }
    return source
  })
