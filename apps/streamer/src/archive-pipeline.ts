import { createHash } from "node:crypto"
import { DeleteObjectsCommand, GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3"
import { Cause, Chunk, Effect, Either, Exit, Option, ParseResult, Predicate, Schema, type Scope } from "effect"
import { S3, awsCall, toAwsError, type AwsError } from "@backup-actions/aws"
import type { Compression } from "@backup-actions/contracts"
import type { Claim, LeaseLost, UploadProgress } from "@backup-actions/ledger"
import { Ledger } from "@backup-actions/ledger"
import { COMPRESS_CONCURRENCY, compressChunk } from "./compress"
import { makeOrderedPool } from "./ordered-pool"
import { partSizeAt, scheduleId, uniformSchedule, type PartSchedule } from "./part-size"
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
  /**
   * Consecutive chunks of `inputBytes` this job stands for, 1 unless given: a run of holes
   * (a sparse volume's unwritten blocks) is one job, whose `produce` gives None, and is stored
   * as one zero frame per chunk, as if each had been a job of its own.
   */
  readonly chunks?: number
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

/** Parts uploading at once unless a request says otherwise. */
export const DEFAULT_UPLOAD_CONCURRENCY = 2

/**
 * The sizes parts are cut at: a schedule by part number (parts held in memory stay small while
 * the archive is small, whatever its bound), or one size for every part.
 */
export type PartSizing = { readonly partSchedule: PartSchedule; readonly partSize?: never } | { readonly partSize: number; readonly partSchedule?: never }

export type ArchiveRequest<E, R> = ArchiveRequestFields<E, R> & PartSizing

interface ArchiveRequestFields<E, R> {
  /** The claim on the step: every progress write is conditioned on it. */
  readonly step: Claim
  readonly target: UploadTarget
  readonly compression: Compression
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
export const fragmentKey = (key: string, partNumber: number): string => `${key}.parts/${String(partNumber).padStart(5, "0")}.ndjson`

/**
 * Deletes the part fragments of an archive, parts 1 to `throughPart`: once its manifest is
 * written, or once its upload is abandoned. Named rather than listed (the streamer may not
 * list the bucket); a fragment that is not there is no error.
 */
export const deleteFragments = (bucket: string, key: string, throughPart: number) =>
  Effect.gen(function* () {
    const s3 = yield* S3
    for (let first = 1; first <= throughPart; first += 1_000) {
      const batch = Array.from({ length: Math.min(1_000, throughPart - first + 1) }, (_, index) => fragmentKey(key, first + index))
      const deleted = yield* awsCall("s3:DeleteObjects", (abortSignal) =>
        s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true } }), { abortSignal })
      )
      const refused = deleted.Errors ?? []
      if (refused.length > 0) {
        const first = refused[0]
        return yield* Effect.fail(
          toAwsError("s3:DeleteObjects")(new Error(`${refused.length} part fragments of ${key} not deleted: ${first?.Key ?? ""}: ${first?.Code ?? ""} ${first?.Message ?? ""}`))
        )
      }
    }
  })

/**
 * The fragments an abandoned upload may have left: the parts it recorded, and those whose
 * fragments were written while the ledger had not yet recorded them (at most the parts
 * uploading at once, and the one being recorded).
 */
const fragmentsOfAbandoned = (upload: UploadProgress, uploadConcurrency: number): number => upload.partsDone + uploadConcurrency + 1

const JournalEntry = Schema.parseJson(
  Schema.Struct({ partNumber: Schema.Number, etag: Schema.String, sha256: Schema.String, size: Schema.Number, inputEnd: Schema.Number })
)
const decodeJournal = Schema.decodeUnknownEither(JournalEntry)

/**
 * The journal entry beside a part, which S3 returned, cannot be trusted: it does not read as
 * an entry, or it is another part's. Nothing failed at AWS; the upload cannot be resumed.
 */
export class UploadJournalInvalid extends Schema.TaggedError<UploadJournalInvalid>()("UploadJournalInvalid", {
  partNumber: Schema.Number,
  reason: Schema.String
}) {
  override get message(): string {
    return `the journal of part ${this.partNumber} ${this.reason}`
  }
}

/** The journal entry written beside a part: its first line. */
const readJournal = (target: UploadTarget, partNumber: number) =>
  Effect.flatMap(S3, (s3) =>
    awsCall("s3:GetObject", async (abortSignal) => {
      const object = await s3.send(new GetObjectCommand({ Bucket: target.bucket, Key: fragmentKey(target.key, partNumber) }), { abortSignal })
      return object.Body === undefined ? "" : object.Body.transformToString()
    })
  ).pipe(
    Effect.flatMap((text) =>
      Either.match(decodeJournal(text.split("\n")[0] ?? ""), {
        onLeft: (error) => Effect.fail(new UploadJournalInvalid({ partNumber, reason: `is unreadable: ${ParseResult.TreeFormatter.formatErrorSync(error).replace(/\s*\n\s*/g, " ")}` })),
        onRight: (entry): Effect.Effect<UploadedPart, UploadJournalInvalid> =>
          entry.partNumber === partNumber
            ? Effect.succeed({ partNumber, etag: entry.etag, sha256: entry.sha256, size: entry.size })
            : Effect.fail(new UploadJournalInvalid({ partNumber, reason: `names part ${entry.partNumber}` }))
      })
    )
  )

interface Frame {
  readonly frame: Buffer
  readonly inputBytes: number
  readonly manifestLines: ReadonlyArray<string>
  /** How many times the frame follows itself (a run of holes): each time for `inputBytes` more. */
  readonly repeat: number
}

interface PartDone {
  readonly part: UploadedPart
  readonly inputEnd: number
  readonly fragment: Option.Option<string>
}

/**
 * Streams a chunk source to one S3 object as concatenated compressed frames:
 * chunks are produced and compressed concurrently, gathered into parts of the schedule's sizes,
 * uploaded with their SHA-256, and after each part the ledger records how far the upload
 * got, so that a worker that dies mid-way resumes the same upload from the last part.
 * Memory is bounded by the pools' capacities times the chunk and part sizes; with a growing
 * schedule, the part size follows what was written rather than the input's bound.
 */
export const archiveToS3 = <E, R>(request: ArchiveRequest<E, R>) =>
  Effect.gen(function* () {
    const ledger = yield* Ledger
    const s3 = yield* S3
    const { step, target } = request
    const schedule = request.partSchedule ?? uniformSchedule(request.partSize)
    // What the ledger records of the schedule, so that a resumed upload cuts its parts the same way.
    const partSize = scheduleId(schedule)
    const uploadConcurrency = request.uploadConcurrency ?? DEFAULT_UPLOAD_CONCURRENCY

    // An earlier attempt's upload that is not resumed is aborted and its fragments deleted: this
    // attempt may write fewer parts, and its own fragments would not replace them all. (An upload
    // that was completed before its attempt failed cannot be aborted; its fragments go all the same.)
    const discard = (upload: UploadProgress) => {
      const warn = (what: string) => (error: AwsError) => Effect.logWarning(`could not ${what} of the earlier upload ${upload.uploadId}: ${error.message}`)
      return abortUpload({ ...target, bucket: upload.bucket, key: upload.key }, upload.uploadId).pipe(
        Effect.catchAll(warn("abort")),
        Effect.zipRight(
          deleteFragments(upload.bucket, upload.key, fragmentsOfAbandoned(upload, uploadConcurrency)).pipe(Effect.catchAll(warn("delete the part fragments")))
        )
      )
    }

    // Resume the recorded upload when the source can start mid-way and the upload still exists.
    const recorded = request.previousUpload
    const resumeFrom = yield* Effect.gen(function* () {
      if (recorded === undefined) return Option.none()
      const reusable = request.resumable && recorded.key === target.key && recorded.partSize === partSize
      if (!reusable) {
        yield* discard(recorded)
        return Option.none()
      }
      // The parts S3 holds, checked against the journal written beside each part as it finished.
      const stored = yield* listUploadedParts(target, recorded.uploadId).pipe(Effect.option)
      const journal = yield* Effect.forEach(
        Array.from({ length: recorded.partsDone }, (_, index) => index + 1),
        (partNumber) => readJournal(target, partNumber),
        { concurrency: 8 }
      ).pipe(
        Effect.tapError((error) => Effect.logWarning(`upload ${recorded.uploadId}: ${error.message}`)),
        Effect.option
      )
      const resumable = Option.flatMap(Option.all([stored, journal]), ([parts, journaled]) => {
        const matches = journaled.every((entry, index) => {
          const held = parts[index]
          // Every part but the last was cut once it reached its scheduled size: a smaller one was cut by another schedule.
          const cutBySchedule = entry.partNumber === journaled.length || entry.size >= partSizeAt(schedule, entry.partNumber)
          return held !== undefined && held.partNumber === entry.partNumber && held.etag === entry.etag && held.size === entry.size && cutBySchedule
        })
        return matches ? Option.some({ uploadId: recorded.uploadId, parts: journaled, inputOffset: recorded.inputOffset }) : Option.none()
      })
      if (Option.isNone(resumable)) {
        yield* Effect.logWarning(`upload ${recorded.uploadId} cannot be resumed; starting over`)
        yield* discard(recorded)
      }
      return resumable
    })

    const uploadId = Option.isSome(resumeFrom) ? resumeFrom.value.uploadId : yield* createUpload(target)
    const doneParts: Array<UploadedPart> = Option.isSome(resumeFrom) ? [...resumeFrom.value.parts] : []
    const fragments: Array<string> = doneParts.map((part) => fragmentKey(target.key, part.partNumber))
    const startOffset = Option.isSome(resumeFrom) ? resumeFrom.value.inputOffset : 0
    /** The highest part whose fragment may have been written, for the clean-up of an abandoned upload. */
    let highestPart = doneParts.length
    if (Option.isSome(resumeFrom)) {
      yield* Effect.logInfo(`resuming upload ${uploadId} after part ${doneParts.length} at input offset ${startOffset}`)
    }
    const run = Effect.scoped(
      Effect.gen(function* () {
        const source = yield* request.openSource(startOffset)
        const frames = yield* makeOrderedPool<Frame, E>(request.compressConcurrency ?? COMPRESS_CONCURRENCY)
        const uploads = yield* makeOrderedPool<PartDone, AwsError | E>(uploadConcurrency)
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
              const repeat = job.value.chunks ?? 1
              yield* frames.submit(
                Effect.flatMap(produce, ({ bytes, manifestLines }) =>
                  Option.isSome(bytes) && repeat > 1
                    ? Effect.dieMessage(`a job of ${repeat} chunks gave bytes: only a run of holes stands for several chunks`)
                    : Effect.map(
                        Option.match(bytes, { onNone: () => zeroFrame(inputBytes), onSome: (chunk) => compressChunk(chunk, request.compression) }),
                        (frame): Frame => ({ frame, inputBytes, manifestLines, repeat })
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
              highestPart = Math.max(highestPart, partNumber)
              const part = yield* uploadPart(target, uploadId, partNumber, buffers, sha256)
              // The part's journal (its checksum and where it ends in the input) and its manifest lines.
              const journal = JSON.stringify({ ...part, inputEnd })
              const body = [journal, ...lines].join("\n") + "\n"
              yield* awsCall("s3:PutObject", (abortSignal) =>
                s3.send(
                  new PutObjectCommand({ Bucket: target.bucket, Key: fragmentKey(target.key, partNumber), Body: body, ContentType: "application/x-ndjson" }),
                  { abortSignal }
                )
              )
              const done: PartDone = { part, inputEnd, fragment: Option.some(fragmentKey(target.key, partNumber)) }
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
              const { frame, inputBytes, manifestLines, repeat } = next.value
              lines.push(...manifestLines)
              // A run of holes may span parts: each of its frames is gathered as a chunk's own would be.
              for (let time = 0; time < repeat; time += 1) {
                buffers.push(frame)
                hash.update(frame)
                size += frame.length
                inputEnd += inputBytes
                if (size >= partSizeAt(schedule, partNumber)) {
                  yield* submitPart(partNumber, buffers, hash.digest("base64"), inputEnd, lines)
                  partNumber += 1
                  buffers = []
                  lines = []
                  size = 0
                  hash = createHash("sha256")
                }
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

    /**
     * How an upload that did not complete is left. A resumable upload stays when its worker
     * lost the step or was interrupted (that is how the step's runtime stops a worker whose
     * lease lapsed, and how a worker shuts down): the next worker resumes it. Any other upload
     * is aborted, so that nothing half-written lingers. After a failure its fragments go too
     * and the ledger forgets it; after losing the step they stay, as another worker may be
     * writing fragments under the same key by now.
     */
    const abandon = (cause: Cause.Cause<unknown>) => {
      const stepLost = Cause.isInterruptedOnly(cause) || Chunk.some(Cause.failures(cause), (error) => Predicate.isTagged(error, "LeaseLost"))
      if (stepLost && request.resumable) return Effect.logInfo(`upload ${uploadId} stays for the worker that resumes the step`)
      const warn = (what: string) => (error: AwsError | LeaseLost) => Effect.logWarning(`could not ${what} of upload ${uploadId}: ${error.message}`)
      const abort = abortUpload(target, uploadId).pipe(Effect.catchAll(warn("abort")))
      if (stepLost) return abort
      return abort.pipe(
        Effect.zipRight(deleteFragments(target.bucket, target.key, highestPart).pipe(Effect.catchAll(warn("delete the part fragments")))),
        Effect.zipRight(ledger.saveUpload(step, undefined).pipe(Effect.catchAll(warn("forget the progress"))))
      )
    }

    // The upload is completed only after the source reported its end, which a source reports
    // only when it read everything well (a tool's source: when the tool exited 0).
    return yield* Effect.gen(function* () {
      yield* ledger.saveUpload(step, {
        bucket: target.bucket,
        key: target.key,
        uploadId,
        partSize,
        partsDone: doneParts.length,
        inputOffset: startOffset
      })
      const inputBytes = yield* run
      const completed = yield* completeUpload(target, uploadId, doneParts)
      const result: ArchiveResult = {
        ...completed,
        inputBytes,
        parts: doneParts.length,
        resumedFromPart: Option.isSome(resumeFrom) ? resumeFrom.value.parts.length : 0,
        manifestFragments: fragments
      }
      return result
    }).pipe(Effect.onExit((exit) => (Exit.isSuccess(exit) ? Effect.void : abandon(exit.cause))))
  })

/** Type of the failures an archive run can end with, besides the source's own. */
export type ArchiveError = AwsError | LeaseLost
