import { createHash, type Hash } from "node:crypto"
import { open, type FileHandle } from "node:fs/promises"
import { Effect, Option, Queue, Scope } from "effect"
import type { ChunkJob, ChunkSource } from "./archive-pipeline"
import { CHUNK_BYTES } from "./ebs-direct-source"
import type { RawRange } from "./mount"
import { SourceReadError } from "./stream-source"
import { paddingAfter, regularFileHeader } from "./tar-member"

const isAllZero = (buffer: Buffer): boolean => {
  for (let at = 0; at + 8 <= buffer.length; at += 8) if (buffer.readBigUInt64LE(at) !== 0n) return false
  for (let at = buffer.length - (buffer.length % 8); at < buffer.length; at += 1) if (buffer[at] !== 0) return false
  return true
}

/** What a raw member's tar entry says besides its path and size. */
export interface RawMemberAttributes {
  readonly mode: number
  readonly uid: number
  readonly gid: number
  readonly mtimeSeconds: number
}

const job = (bytes: Buffer | undefined, inputBytes: number, release?: Effect.Effect<void>): ChunkJob<SourceReadError> => ({
  inputBytes,
  produce: Effect.succeed({ bytes: bytes === undefined ? Option.none() : Option.some(bytes), manifestLines: [] }),
  ...(release === undefined ? {} : { release })
})

/**
 * Where each raw member starts in the stream `rawMembersSource` writes (its header's offset),
 * and where the stream ends, which is where the tar that follows it starts.
 */
export const rawMemberOffsets = (ranges: ReadonlyArray<RawRange>, attributes: RawMemberAttributes): { readonly offsets: ReadonlyMap<string, number>; readonly end: number } => {
  const offsets = new Map<string, number>()
  let at = 0
  for (const range of ranges) {
    offsets.set(range.member, at)
    at += regularFileHeader({ path: range.member, size: range.bytes, ...attributes }).length + range.bytes + paddingAfter(range.bytes)
  }
  return { offsets, end: at }
}

/**
 * Disk ranges as tar members: for each, its header, its bytes read in order (in 4 MiB chunks
 * through a fixed ring of buffers, chunks of zeros passed as holes), and the padding to the
 * next block. The SHA-256 of each member's bytes is computed as they are read, in order, and
 * handed to `onHashed` once the member ends. No end-of-archive: a tar follows.
 */
export const rawMembersSource = (
  ranges: ReadonlyArray<RawRange>,
  attributes: RawMemberAttributes,
  buffers: number,
  onHashed: (member: string, sha256: string) => void
) =>
  Effect.gen(function* () {
    const handles = new Map<string, FileHandle>()
    for (const device of new Set(ranges.map((range) => range.device))) {
      const handle = yield* Effect.acquireRelease(
        Effect.tryPromise({ try: () => open(device, "r"), catch: (error) => new SourceReadError({ source: device, reason: String(error) }) }),
        (file) => Effect.promise(() => file.close())
      )
      handles.set(device, handle)
    }
    const free = yield* Queue.bounded<Buffer>(buffers)
    yield* Queue.offerAll(free, Array.from({ length: buffers }, () => Buffer.allocUnsafe(CHUNK_BYTES)))
    let index = 0
    /** Where the current member is: its header not yet written (-1), or the bytes of it read so far. */
    let position = -1
    let hash: Hash = createHash("sha256")
    const source: ChunkSource<SourceReadError> = {
      pull: Effect.gen(function* () {
        let range = ranges[index]
        while (range !== undefined && position >= range.bytes) {
          // The member's bytes are all read: its hash is known, and its padding ends it.
          onHashed(range.member, hash.digest("hex"))
          const padding = paddingAfter(range.bytes)
          index += 1
          position = -1
          if (padding > 0) return Option.some(job(undefined, padding))
          range = ranges[index]
        }
        if (range === undefined) return Option.none()
        if (position < 0) {
          position = 0
          hash = createHash("sha256")
          const header = regularFileHeader({ path: range.member, size: range.bytes, ...attributes })
          return Option.some(job(header, header.length))
        }
        const length = Math.min(CHUNK_BYTES, range.bytes - position)
        const at = range.offset + position
        const buffer = yield* Queue.take(free)
        const handle = handles.get(range.device) as FileHandle
        const read = yield* Effect.tryPromise({
          try: () => handle.read(buffer, 0, length, at),
          catch: (error) => new SourceReadError({ source: range.device, reason: String(error) })
        }).pipe(Effect.tapError(() => Queue.offer(free, buffer)))
        if (read.bytesRead !== length) {
          yield* Queue.offer(free, buffer)
          return yield* new SourceReadError({ source: range.device, reason: `short read at ${at}: ${read.bytesRead} of ${length} bytes` })
        }
        position += length
        const chunk = buffer.subarray(0, length)
        hash.update(chunk)
        const release = Queue.offer(free, buffer).pipe(Effect.asVoid)
        if (isAllZero(chunk)) {
          yield* release
          return Option.some(job(undefined, length))
        }
        return Option.some(job(chunk, length, release))
      })
    }
    return source
  })

/**
 * Sources one after the other; each is opened (in the scope the whole was opened in) only
 * when the one before it ended, so a tool that produces the next one starts only then.
 */
export const concatSources = <E, R>(opens: ReadonlyArray<Effect.Effect<ChunkSource<E>, E, R | Scope.Scope>>) =>
  Effect.gen(function* () {
    const scope = yield* Effect.scope
    const context = yield* Effect.context<R>()
    let index = 0
    let current: ChunkSource<E> | undefined
    const pull: Effect.Effect<Option.Option<ChunkJob<E>>, E> = Effect.gen(function* () {
      while (index < opens.length) {
        if (current === undefined) {
          const next = opens[index] as Effect.Effect<ChunkSource<E>, E, R | Scope.Scope>
          current = yield* Scope.extend(next, scope).pipe(Effect.provide(context))
        }
        const pulled = yield* current.pull
        if (Option.isSome(pulled)) return pulled
        current = undefined
        index += 1
      }
      return Option.none()
    })
    const source: ChunkSource<E> = { pull }
    return source
  })
