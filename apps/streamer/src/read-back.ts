import { PassThrough, type Readable } from "node:stream"
import { createGunzip } from "node:zlib"
import { GetObjectCommand } from "@aws-sdk/client-s3"
import { Duration, Effect, Fiber, Option, Schema } from "effect"
import { S3, awsCall, type AwsError } from "@backup-actions/aws"
import type { Compression } from "@backup-actions/contracts"
import type { ContentCheck } from "./content-check"
import { commandFailure, spawnTool, streamingToolLimits } from "./exec"
import { makeOrderedPool } from "./ordered-pool"

/** The size of one ranged GET of the read-back. */
export const READ_BACK_RANGE = 8 * 1024 * 1024
/** Ranged GETs in flight at once; their results are used in order. */
export const READ_BACK_CONCURRENCY = 4

/** An archive as S3 holds it after its upload completed. */
export interface StoredArchive {
  readonly bucket: string
  readonly key: string
  readonly size: number
  /** The object's ETag: every range is read from this version of it, or the read fails. */
  readonly etag: string | undefined
  readonly compression: Compression
}

/** The archive's content could not be read to its end: its decompressor refused the data, or stopped. */
export class ArchiveUnreadable extends Schema.TaggedError<ArchiveUnreadable>()("ArchiveUnreadable", {
  key: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `${this.key} cannot be read back: ${this.reason}`
  }
}

const getRange = (archive: StoredArchive, start: number, end: number) =>
  Effect.flatMap(S3, (s3) =>
    awsCall(
      "s3:GetObject",
      async (abortSignal) => {
        const object = await s3.send(
          new GetObjectCommand({
            Bucket: archive.bucket,
            Key: archive.key,
            Range: `bytes=${start}-${end - 1}`,
            ...(archive.etag === undefined ? {} : { IfMatch: archive.etag })
          }),
          { abortSignal }
        )
        const bytes = object.Body === undefined ? new Uint8Array(0) : await object.Body.transformToByteArray()
        return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
      },
      { timeout: Duration.minutes(2) }
    )
  ).pipe(
    Effect.filterOrFail(
      (bytes) => bytes.length === end - start,
      (bytes) => new ArchiveUnreadable({ key: archive.key, reason: `bytes ${start}-${end - 1} came back as ${bytes.length} bytes` })
    )
  )

/**
 * Resolves when the stream drains or closes, whichever comes first, and leaves no listener
 * behind: a listener for the one that did not happen would stay until the stream closes, one
 * more for every wait, on an archive read back in thousands of ranges.
 */
export const drainedOrClosed = (stream: PassThrough): Promise<void> =>
  new Promise((resolve) => {
    const done = () => {
      stream.off("drain", done)
      stream.off("close", done)
      resolve()
    }
    stream.on("drain", done)
    stream.on("close", done)
  })

/** Writes with backpressure; false once the stream is gone (the decompressor stopped reading). */
const write = (stream: PassThrough, bytes: Buffer) =>
  Effect.promise(async () => {
    if (stream.destroyed) return false
    if (!stream.write(bytes)) await drainedOrClosed(stream)
    return !stream.destroyed
  })

/** Reads the archive in ranges, several at once, and writes them in order into `input`, which it ends. */
const feed = (archive: StoredArchive, input: PassThrough) =>
  Effect.scoped(
    Effect.gen(function* () {
      const s3 = yield* S3
      const ranges = yield* makeOrderedPool<Buffer, AwsError | ArchiveUnreadable>(READ_BACK_CONCURRENCY)
      yield* Effect.forkScoped(
        Effect.gen(function* () {
          for (let start = 0; start < archive.size; start += READ_BACK_RANGE) {
            yield* ranges.submit(getRange(archive, start, Math.min(archive.size, start + READ_BACK_RANGE)).pipe(Effect.provideService(S3, s3)))
          }
          yield* ranges.end
        })
      )
      while (true) {
        const next = yield* ranges.next
        if (Option.isNone(next)) break
        if (!(yield* write(input, next.value))) return
      }
      input.end()
    })
  )

/** Hands every chunk of `output` to the check; ends with the stream, or fails with what broke it. */
const drain = (key: string, output: Readable, check: ContentCheck) =>
  Effect.async<number, ArchiveUnreadable>((resume) => {
    let bytes = 0
    let ended = false
    output.on("data", (chunk: Buffer) => {
      bytes += chunk.length
      check.update(chunk)
    })
    output.once("end", () => {
      ended = true
      resume(Effect.succeed(bytes))
    })
    output.once("error", (error) => resume(Effect.fail(new ArchiveUnreadable({ key, reason: error.message }))))
    output.once("close", () => {
      if (!ended) resume(Effect.fail(new ArchiveUnreadable({ key, reason: "its decompressed content stopped before its end" })))
    })
    return Effect.sync(() => output.destroy())
  })

/**
 * Reads an archive back from S3 (ranged GETs in parallel, used in order), decompresses it
 * (zstd frames with the stock `zstd`, since Node.js's zstd stream stops after the first
 * frame; gzip members with node:zlib) and feeds its content to `check`. Memory holds the
 * ranges in flight and the decompressor's buffers, whatever the archive's size. Returns the
 * bytes of content read.
 */
export const readArchiveBack = (archive: StoredArchive, check: ContentCheck) =>
  Effect.scoped(
    Effect.gen(function* () {
      const input = new PassThrough({ highWaterMark: READ_BACK_RANGE })
      const decompressor =
        archive.compression === "gzip"
          ? Option.none()
          : Option.some(yield* spawnTool({ command: "zstd", args: ["-d", "-c", "-q"], limits: yield* streamingToolLimits, stdin: input }))
      const output: Readable = Option.match(decompressor, {
        onNone: () => input.pipe(createGunzip({ chunkSize: 1024 * 1024 })),
        onSome: (tool) => tool.stdout
      })
      // A failed read stops the decompressor, so that the drain below ends too.
      const stop = Effect.sync(() => {
        input.destroy()
        output.destroy()
      })
      const fed = yield* Effect.fork(feed(archive, input).pipe(Effect.tapError(() => stop)))
      const drained = yield* Effect.either(drain(archive.key, output, check))
      input.destroy()
      yield* Fiber.join(fed)
      if (Option.isSome(decompressor)) {
        const tool = decompressor.value
        const exit = yield* tool.exit.pipe(Effect.mapError((timedOut) => new ArchiveUnreadable({ key: archive.key, reason: timedOut.message })))
        if (exit.code !== 0) {
          const failure = commandFailure("zstd", exit, tool.stderr())
          return yield* new ArchiveUnreadable({ key: archive.key, reason: `zstd exited with ${failure.exitCode ?? "an error"}: ${failure.stderr}` })
        }
      }
      return yield* drained
    })
  )
