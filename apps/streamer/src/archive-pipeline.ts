import { createHash } from "node:crypto"
import { GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3"
import { Effect, Either, Option, Schema, type Scope } from "effect"
import { S3, awsCall, toAwsError, type AwsError } from "@backup-actions/aws"
import type { Compression } from "@backup-actions/contracts"
import type { LeaseLost, StepKey, UploadProgress } from "@backup-actions/ledger"
import { Ledger } from "@backup-actions/ledger"
import { COMPRESS_CONCURRENCY, compressChunk } from "./compress"
import { makeOrderedPool } from "./ordered-pool"
import {
  abortUpload,
  completeUpload,
  createUpload,
  listUploadedParts,
  uploadPart,
  type CompletedUpload,
  type UploadTarget,
  type UploadedPart
} from "./multipart"

/** One chunk of input: how many bytes it stands for, and the work that produces them. */
export interface ChunkJob<E> {
  readonly inputBytes: number
  /** The chunk's bytes, or None when they are all zeros (a hole in a sparse image). */
  readonly produce: Effect.Effect<{ readonly bytes: Option.Option<Buffer>; readonly manifestLines: ReadonlyArray<string> }, E>
  /** Gives the chunk's buffer back to its source once the chunk is compressed. */
  readonly release?: Effect.Effect<void>
}

/** Pulled one chunk at a time, in order; None at the end. */
export interface ChunkSource<E> {
  readonly pull: Effect.Effect<Option.Option<ChunkJob<E>>, E>
}

export interface ArchiveProgress {
  readonly inputBytes: number
  readonly storedBytes: number
  readonly parts: number
}

export interface ArchiveRequest<E, R> {
  readonly step: StepKey
  readonly target: UploadTarget
  readonly compression: Compression
  readonly partSize: number
  /** Chunks compressing at once. */
  readonly compressConcurrency?: number
  /** Parts uploading at once. */
  readonly uploadConcurrency?: number
  /** Opens the source at an input offset (0, or where a resumed upload left off). */
  readonly openSource: (inputOffset: number) => Effect.Effect<ChunkSource<E>, E, R | Scope.Scope>
  /** Whether the source can start mid-way; a tar stream cannot. */
  readonly resumable: boolean
  /** The upload an earlier worker recorded for this step, as the claim returned it. */
  readonly previousUpload: UploadProgress | undefined
  readonly onProgress?: (progress: ArchiveProgress) => Effect.Effect<void>
}

export interface ArchiveResult extends CompletedUpload {
  readonly inputBytes: number
  readonly parts: number
  readonly resumedFromPart: number
  /** Keys of the per-part manifest fragments, in order. */
  readonly manifestFragments: ReadonlyArray<string>
}

/**
 * Beside each uploaded part: a small object whose first line is the part's journal entry
 * (number, ETag, SHA-256, size, input offset at its end) and whose other lines are the
 * part's manifest lines. A resumed upload trusts a part only if S3 holds it with the same
 * ETag and size; the final manifest is assembled from these, and they are then deleted.
 */
export const fragmentKey = (target: UploadTarget, partNumber: number): string =>
  `${target.key}.parts/${String(partNumber).padStart(5, "0")}.ndjson`

const JournalEntry = Schema.parseJson(
  Schema.Struct({ partNumber: Schema.Number, etag: Schema.String, sha256: Schema.String, size: Schema.Number, inputEnd: Schema.Number })
)
const decodeJournal = Schema.decodeUnknownEither(JournalEntry)

/** The journal entry written beside a part: its first line. */
const readJournal = (target: UploadTarget, partNumber: number) =>
  Effect.flatMap(S3, (s3) =>
    awsCall("s3:GetObject", async (abortSignal) => {
      const object = await s3.send(new GetObjectCommand({ Bucket: target.bucket, Key: fragmentKey(target, partNumber) }), { abortSignal })
      return object.Body === undefined ? "" : object.Body.transformToString()
    })
  ).pipe(
    Effect.flatMap((text) =>
      Either.match(decodeJournal(text.split("\n")[0] ?? ""), {
        onLeft: () => Effect.fail(toAwsError("s3:GetObject")(new Error(`the journal of part ${partNumber} is unreadable`))),
        onRight: (entry): Effect.Effect<UploadedPart, AwsError> =>
          entry.partNumber === partNumber
            ? Effect.succeed({ partNumber, etag: entry.etag, sha256: entry.sha256, size: entry.size })
            : Effect.fail(toAwsError("s3:GetObject")(new Error(`the journal of part ${partNumber} names part ${entry.partNumber}`)))
      })
    )
  )

interface Frame {
  readonly frame: Buffer
  readonly inputBytes: number
  readonly manifestLines: ReadonlyArray<string>
}

interface PartDone {
  readonly part: UploadedPart
  readonly inputEnd: number
  readonly fragment: Option.Option<string>
}

/**
 * Streams a chunk source to one S3 object as concatenated compressed frames:
 * chunks are produced and compressed concurrently, gathered into parts of `partSize`,
 * uploaded with their SHA-256, and after each part the ledger records how far the upload
 * got, so that a worker that dies mid-way resumes the same upload from the last part.
 * Memory is bounded by the pools' capacities times the chunk and part sizes.
 */
export const archiveToS3 = <E, R>(request: ArchiveRequest<E, R>) =>
  Effect.gen(function* () {
    const ledger = yield* Ledger
    const s3 = yield* S3
    const { step, target, partSize } = request

    // Resume the recorded upload when the source can start mid-way and the upload still exists.
    const recorded = request.previousUpload
    const resumeFrom = yield* Effect.gen(function* () {
      if (recorded === undefined) return Option.none()
      const reusable = request.resumable && recorded.key === target.key && recorded.partSize === partSize
      if (!reusable) {
        yield* abortUpload({ ...target, key: recorded.key }, recorded.uploadId).pipe(Effect.catchAll(() => Effect.void))
        return Option.none()
      }
      // The parts S3 holds, checked against the journal written beside each part as it finished.
      const stored = yield* listUploadedParts(target, recorded.uploadId).pipe(Effect.option)
      const journal = yield* Effect.forEach(
        Array.from({ length: recorded.partsDone }, (_, index) => index + 1),
        (partNumber) => readJournal(target, partNumber),
        { concurrency: 8 }
      ).pipe(Effect.option)
      const resumable = Option.flatMap(Option.all([stored, journal]), ([parts, journaled]) => {
        const matches = journaled.every((entry, index) => {
          const held = parts[index]
          return held !== undefined && held.partNumber === entry.partNumber && held.etag === entry.etag && held.size === entry.size
        })
        return matches ? Option.some({ uploadId: recorded.uploadId, parts: journaled, inputOffset: recorded.inputOffset }) : Option.none()
      })
      if (Option.isNone(resumable)) {
        yield* Effect.logWarning(`upload ${recorded.uploadId} cannot be resumed; starting over`)
        yield* abortUpload(target, recorded.uploadId).pipe(Effect.catchAll(() => Effect.void))
      }
      return resumable
    })

    const uploadId = Option.isSome(resumeFrom) ? resumeFrom.value.uploadId : yield* createUpload(target)
    const doneParts: Array<UploadedPart> = Option.isSome(resumeFrom) ? [...resumeFrom.value.parts] : []
    const fragments: Array<string> = doneParts.map((part) => fragmentKey(target, part.partNumber))
    const startOffset = Option.isSome(resumeFrom) ? resumeFrom.value.inputOffset : 0
    if (Option.isSome(resumeFrom)) {
      yield* Effect.logInfo(`resuming upload ${uploadId} after part ${doneParts.length} at input offset ${startOffset}`)
    }
    yield* ledger.saveUpload(step, {
      bucket: target.bucket,
      key: target.key,
      uploadId,
      partSize,
      partsDone: doneParts.length,
      inputOffset: startOffset
    })

    const run = Effect.scoped(
      Effect.gen(function* () {
        const source = yield* request.openSource(startOffset)
        const frames = yield* makeOrderedPool<Frame, E>(request.compressConcurrency ?? COMPRESS_CONCURRENCY)
        const uploads = yield* makeOrderedPool<PartDone, AwsError | E>(request.uploadConcurrency ?? 2)
        const zeroFrames = new Map<number, Buffer>()
        const zeroFrame = (size: number) =>
          Effect.suspend(() => {
            const cached = zeroFrames.get(size)
            return cached !== undefined
              ? Effect.succeed(cached)
              : Effect.tap(compressChunk(Buffer.alloc(size), request.compression), (frame) => Effect.sync(() => zeroFrames.set(size, frame)))
          })

        // Stage 1: pull chunks in order, produce and compress them concurrently.
        yield* Effect.forkScoped(
          Effect.gen(function* () {
            while (true) {
              const job = yield* source.pull
              if (Option.isNone(job)) break
              const { inputBytes, produce, release } = job.value
              yield* frames.submit(
                Effect.flatMap(produce, ({ bytes, manifestLines }) =>
                  Effect.map(
                    Option.match(bytes, { onNone: () => zeroFrame(inputBytes), onSome: (chunk) => compressChunk(chunk, request.compression) }),
                    (frame) => ({ frame, inputBytes, manifestLines })
                  )
                ).pipe(Effect.ensuring(release ?? Effect.void))
              )
            }
            yield* frames.end
          }).pipe(Effect.catchAllCause((cause) => frames.submit(Effect.failCause(cause))))
        )

        // Stage 2: gather frames into parts and upload them, each with its manifest fragment.
        const submitPart = (partNumber: number, buffers: ReadonlyArray<Buffer>, sha256: string, inputEnd: number, lines: ReadonlyArray<string>) =>
          uploads.submit(
            Effect.gen(function* () {
              const part = yield* uploadPart(target, uploadId, partNumber, buffers, sha256)
              // The part's journal (its checksum and where it ends in the input) and its manifest lines.
              const journal = JSON.stringify({ ...part, inputEnd })
              const body = [journal, ...lines].join("\n") + "\n"
              yield* awsCall("s3:PutObject", (abortSignal) =>
                s3.send(
                  new PutObjectCommand({ Bucket: target.bucket, Key: fragmentKey(target, partNumber), Body: body, ContentType: "application/x-ndjson" }),
                  { abortSignal }
                )
              )
              const done: PartDone = { part, inputEnd, fragment: Option.some(fragmentKey(target, partNumber)) }
              return done
            }).pipe(Effect.provideService(S3, s3))
          )

        yield* Effect.forkScoped(
          Effect.gen(function* () {
            let partNumber = doneParts.length + 1
            let buffers: Array<Buffer> = []
            let lines: Array<string> = []
            let size = 0
            let hash = createHash("sha256")
            let inputEnd = startOffset
            while (true) {
              const next = yield* frames.next
              if (Option.isNone(next)) break
              buffers.push(next.value.frame)
              hash.update(next.value.frame)
              lines.push(...next.value.manifestLines)
              size += next.value.frame.length
              inputEnd += next.value.inputBytes
              if (size >= partSize) {
                yield* submitPart(partNumber, buffers, hash.digest("base64"), inputEnd, lines)
                partNumber += 1
                buffers = []
                lines = []
                size = 0
                hash = createHash("sha256")
              }
            }
            if (size > 0 || partNumber === 1) yield* submitPart(partNumber, buffers, hash.digest("base64"), inputEnd, lines)
            yield* uploads.end
          }).pipe(Effect.catchAllCause((cause) => uploads.submit(Effect.failCause(cause))))
        )

        // Stage 3: record each finished part, in order, in the ledger.
        let inputBytes = startOffset
        while (true) {
          const next = yield* uploads.next
          if (Option.isNone(next)) break
          const { part, inputEnd, fragment } = next.value
          doneParts.push(part)
          if (Option.isSome(fragment)) fragments.push(fragment.value)
          inputBytes = inputEnd
          yield* ledger.saveUpload(step, {
            bucket: target.bucket,
            key: target.key,
            uploadId,
            partSize,
            partsDone: part.partNumber,
            inputOffset: inputEnd
          })
          if (request.onProgress !== undefined) {
            yield* request.onProgress({
              inputBytes,
              storedBytes: doneParts.reduce((total, done) => total + done.size, 0),
              parts: doneParts.length
            })
          }
        }
        return inputBytes
      })
    )

    // A failure (not a crash, not an interruption) abandons the upload: nothing half-written lingers.
    const inputBytes = yield* run.pipe(
      Effect.tapError(() =>
        abortUpload(target, uploadId).pipe(
          Effect.zipRight(ledger.saveUpload(step, undefined)),
          Effect.catchAll((cleanup) => Effect.logWarning(`could not abort upload ${uploadId}: ${String(cleanup)}`))
        )
      )
    )
    const completed = yield* completeUpload(target, uploadId, doneParts)
    const result: ArchiveResult = {
      ...completed,
      inputBytes,
      parts: doneParts.length,
      resumedFromPart: Option.isSome(resumeFrom) ? resumeFrom.value.parts.length : 0,
      manifestFragments: fragments
    }
    return result
  })

/** Type of the failures an archive run can end with, besides the source's own. */
export type ArchiveError = AwsError | LeaseLost
