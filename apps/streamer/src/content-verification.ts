import { createWriteStream } from "node:fs"
import { mkdir, mkdtemp, rm } from "node:fs/promises"
import { join } from "node:path"
import { Readable } from "node:stream"
import { pipeline } from "node:stream/promises"
import { GetObjectCommand } from "@aws-sdk/client-s3"
import { Duration, Effect, Either } from "effect"
import { parseHeader, rawRanges, readLines, treeEntries } from "@backup-actions/archive"
import { S3, awsCall } from "@backup-actions/aws"
import { ServiceSettings } from "@backup-actions/config"
import type { Verification } from "@backup-actions/contracts"
import { rawImageContentCheck, streamContentCheck, summarizeProblems, tarContentCheck, type ContentCheck } from "./content-check"
import { ArchiveUnreadable, readArchiveBack, type StoredArchive } from "./read-back"
import { SCRATCH } from "./leftovers"

/**
 * How far an archive was verified, and why not further: "content" when it was read back and
 * matched its source's checksums (only that allows deleting the source), "upload" when S3
 * holds the bytes sent but they do not decompress to the source, "none" when S3's checksum
 * of the upload did not hold either.
 */
export type ContentVerdict = { readonly verified: "content" } | { readonly verified: Exclude<Verification, "content">; readonly reason: string }

/** Copies the manifest to a local file: it is read twice (the header, then its lines), and may be larger than memory should hold. */
const downloadManifest = (bucket: string, key: string, file: string) =>
  Effect.flatMap(S3, (s3) =>
    awsCall(
      "s3:GetObject",
      async (abortSignal) => {
        const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }), { abortSignal })
        if (!(object.Body instanceof Readable)) throw new Error(`${key}: the SDK returned no readable body`)
        await pipeline(object.Body, createWriteStream(file), { signal: abortSignal })
      },
      { timeout: Duration.minutes(10) }
    )
  )

/** A scratch directory under the work directory, removed with the scope. */
const scratch = (key: string) =>
  Effect.flatMap(ServiceSettings, (settings) =>
    Effect.acquireRelease(
      Effect.tryPromise({
        try: async () => {
          await mkdir(settings.workDir, { recursive: true })
          return mkdtemp(join(settings.workDir, SCRATCH.verify))
        },
        catch: (error) => new ArchiveUnreadable({ key, reason: `no scratch space for its manifest: ${String(error)}` })
      }),
      (directory) => Effect.promise(() => rm(directory, { recursive: true, force: true }))
    )
  )

/** The check a manifest calls for, or why there is none. */
const checkFor = (file: string): Either.Either<ContentCheck, string> => {
  const lines = readLines(file)
  const first = lines.next()
  lines.return(undefined)
  return Either.map(parseHeader(first.done === true ? undefined : first.value), (header) =>
    header.kind === "backup-actions/raw-image-manifest"
      ? rawImageContentCheck(rawRanges(readLines(file)), header.imageBytes)
      : tarContentCheck(() => treeEntries(readLines(file)), header.layout)
  )
}

/**
 * Reads a raw image or tar archive back from S3, decompresses it, and compares its content
 * with the manifest written beside it, whose checksums came from the source. Returns what
 * differs; empty when the content holds.
 */
export const contentProblems = (archive: StoredArchive, manifestKey: string) =>
  Effect.scoped(
    Effect.gen(function* () {
      const directory = yield* scratch(archive.key)
      const file = join(directory, "manifest.ndjson")
      yield* downloadManifest(archive.bucket, manifestKey, file)
      const check = checkFor(file)
      if (Either.isLeft(check)) return [`${manifestKey}: ${check.left}`]
      yield* readArchiveBack(archive, check.right)
      return check.right.finish()
    })
  ).pipe(Effect.catchTag("ArchiveUnreadable", (error) => Effect.succeed([error.message])))

/**
 * The verdict on a written archive: S3's checksum of the upload first (no read-back when it
 * failed), then the content read back against `problems`.
 */
export const verdictOf = (uploadVerified: boolean, problems: ReadonlyArray<string>): ContentVerdict =>
  !uploadVerified
    ? { verified: "none", reason: "S3's checksum of the upload differs from the parts sent" }
    : problems.length === 0
      ? { verified: "content" }
      : { verified: "upload", reason: `the archive read back differs from its source: ${summarizeProblems(problems)}` }

/** An archive to verify, as it was stored, and whether S3's checksum of its upload held. */
export type ArchiveToVerify = StoredArchive & { readonly uploadVerified: boolean }

/** The verdict on an archive: its upload, then, only when that held, the content `problems` finds. */
const verify = <E, R>(archive: ArchiveToVerify, problems: Effect.Effect<ReadonlyArray<string>, E, R>) =>
  archive.uploadVerified
    ? Effect.tap(Effect.map(problems, (found) => verdictOf(true, found)), (verdict) =>
        "reason" in verdict ? Effect.logError(`${archive.key}: ${verdict.reason}`) : Effect.logInfo(`${archive.key}: content verified against its source`)
      )
    : Effect.succeed(verdictOf(false, []))

/** Verifies a raw image or tar archive against the manifest beside it. */
export const verifyArchive = (archive: ArchiveToVerify, manifestKey: string) => verify(archive, contentProblems(archive, manifestKey))

/** Verifies a compressed stream (a dump) against the SHA-256 and size of what was compressed. */
export const verifyStream = (archive: ArchiveToVerify, expected: { readonly sha256: string; readonly bytes: number }) =>
  verify(
    archive,
    Effect.suspend(() => {
      const check = streamContentCheck(expected)
      return readArchiveBack(archive, check).pipe(
        Effect.map(() => check.finish()),
        Effect.catchTag("ArchiveUnreadable", (error) => Effect.succeed([error.message]))
      )
    })
  )
