import { createHash } from "node:crypto"
import { createReadStream } from "node:fs"
import {
  AbortMultipartUploadCommand,
  ChecksumAlgorithm,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  HeadObjectCommand,
  PutObjectCommand,
  UploadPartCommand
} from "@aws-sdk/client-s3"
import { Effect } from "effect"
import { S3, awsCall } from "@backup-actions/aws"

/** Up to this size a file goes up in one PutObject; above it, in parts. */
export const SINGLE_UPLOAD_LIMIT = 64 * 1024 * 1024
const MIN_PART_SIZE = 16 * 1024 * 1024
const MAX_PARTS = 10_000

/** A part size that fits any file into S3's 10,000 parts. */
export const partSizeFor = (bytes: number, minimum = MIN_PART_SIZE): number => Math.max(minimum, Math.ceil(bytes / MAX_PARTS))

export interface VerifiedUpload {
  readonly bucket: string
  readonly key: string
  readonly bytes: number
  readonly checksumType: "FULL_OBJECT" | "COMPOSITE"
  /** What we computed over the bytes we wrote, in the form S3 keeps for this upload. */
  readonly checksum: string
  /** What S3 reports for the stored object. */
  readonly stored: string | undefined
  readonly verified: boolean
}

const sha256Base64 = (bytes: Buffer | Uint8Array): string => createHash("sha256").update(bytes).digest("base64")

/** A part's SHA-256, read from the file (a second read keeps memory bounded to one stream). */
const sha256OfRange = (file: string, start: number, end: number) =>
  Effect.async<string>((resume) => {
    const hash = createHash("sha256")
    const stream = createReadStream(file, { start, end: end - 1 })
    stream.on("data", (chunk) => hash.update(chunk))
    stream.on("end", () => resume(Effect.succeed(hash.digest("base64"))))
    stream.on("error", (error) => resume(Effect.die(error)))
    return Effect.sync(() => stream.destroy())
  })

/**
 * S3 reports a multipart object's composite checksum as "<base64>-<parts>"; an S3-compatible
 * store may leave off the suffix, which then is not compared.
 */
export const sameChecksum = (stored: string | undefined, computed: string): boolean =>
  stored !== undefined && (stored === computed || (computed.includes("-") && stored === computed.split("-")[0]))

/**
 * Uploads a finished file with a SHA-256 that S3 checks on receipt, then asks S3 for the
 * checksum it stored and compares: `verified` is what allows deleting a source.
 */
export const uploadVerified = (options: {
  readonly file: string
  readonly bytes: number
  /** The file's SHA-256 (base64), computed while it was written. */
  readonly sha256: string
  readonly bucket: string
  readonly key: string
  readonly contentType: string
  readonly singleUploadLimit?: number
  readonly minimumPartSize?: number
}) =>
  Effect.gen(function* () {
    const s3 = yield* S3
    const { file, bucket, key } = options
    let checksum: string
    let checksumType: "FULL_OBJECT" | "COMPOSITE"
    if (options.bytes <= (options.singleUploadLimit ?? SINGLE_UPLOAD_LIMIT)) {
      yield* awsCall(
        "s3:PutObject",
        (abortSignal) =>
          s3.send(
            new PutObjectCommand({
              Bucket: bucket,
              Key: key,
              Body: createReadStream(file),
              ContentLength: options.bytes,
              ContentType: options.contentType,
              ChecksumAlgorithm: ChecksumAlgorithm.SHA256,
              ChecksumSHA256: options.sha256
            }),
            { abortSignal }
          ),
        { timeout: "10 minutes" }
      )
      checksum = options.sha256
      checksumType = "FULL_OBJECT"
    } else {
      const parts = yield* uploadParts(options)
      checksum = `${sha256Base64(Buffer.concat(parts.map((part) => Buffer.from(part.sha256, "base64"))))}-${parts.length}`
      checksumType = "COMPOSITE"
    }
    const head = yield* awsCall("s3:HeadObject", (abortSignal) =>
      s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key, ChecksumMode: "ENABLED" }), { abortSignal })
    )
    const stored = head.ChecksumSHA256
    const verified = sameChecksum(stored, checksum) && head.ContentLength === options.bytes
    const result: VerifiedUpload = { bucket, key, bytes: options.bytes, checksumType, checksum, stored, verified }
    return result
  })

/** A multipart upload, aborted if anything fails or the fiber is interrupted before it completes. */
const uploadParts = (options: {
  readonly file: string
  readonly bytes: number
  readonly bucket: string
  readonly key: string
  readonly contentType: string
  readonly minimumPartSize?: number
}) =>
  Effect.gen(function* () {
    const s3 = yield* S3
    const { file, bucket, key } = options
    const created = yield* awsCall("s3:CreateMultipartUpload", (abortSignal) =>
      s3.send(
        new CreateMultipartUploadCommand({
          Bucket: bucket,
          Key: key,
          ContentType: options.contentType,
          ChecksumAlgorithm: ChecksumAlgorithm.SHA256,
          ChecksumType: "COMPOSITE"
        }),
        { abortSignal }
      )
    )
    const uploadId = created.UploadId ?? ""
    const partSize = partSizeFor(options.bytes, options.minimumPartSize)
    const count = Math.ceil(options.bytes / partSize)
    const upload = Effect.forEach(
      Array.from({ length: count }, (_, index) => index),
      (index) =>
        Effect.gen(function* () {
          const start = index * partSize
          const end = Math.min(options.bytes, start + partSize)
          const sha256 = yield* sha256OfRange(file, start, end)
          const uploaded = yield* awsCall(
            "s3:UploadPart",
            (abortSignal) =>
              s3.send(
                new UploadPartCommand({
                  Bucket: bucket,
                  Key: key,
                  UploadId: uploadId,
                  PartNumber: index + 1,
                  Body: createReadStream(file, { start, end: end - 1 }),
                  ContentLength: end - start,
                  ChecksumAlgorithm: ChecksumAlgorithm.SHA256,
                  ChecksumSHA256: sha256
                }),
                { abortSignal }
              ),
            { timeout: "5 minutes" }
          )
          return { partNumber: index + 1, etag: uploaded.ETag ?? "", sha256 }
        }),
      { concurrency: 2 }
    )
    const parts = yield* upload.pipe(
      Effect.tap((done) =>
        awsCall("s3:CompleteMultipartUpload", (abortSignal) =>
          s3.send(
            new CompleteMultipartUploadCommand({
              Bucket: bucket,
              Key: key,
              UploadId: uploadId,
              ChecksumType: "COMPOSITE",
              MultipartUpload: { Parts: done.map((part) => ({ PartNumber: part.partNumber, ETag: part.etag, ChecksumSHA256: part.sha256 })) }
            }),
            { abortSignal }
          )
        )
      ),
      Effect.onExit((exit) =>
        exit._tag === "Success"
          ? Effect.void
          : awsCall("s3:AbortMultipartUpload", (abortSignal) =>
              s3.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId }), { abortSignal })
            ).pipe(Effect.ignoreLogged)
      )
    )
    return parts
  })

/** Puts a small JSON document (a manifest) with its SHA-256 checked by S3 on receipt. */
export const putJson = (bucket: string, key: string, document: unknown) =>
  Effect.flatMap(S3, (s3) => {
    const body = Buffer.from(`${JSON.stringify(document, null, 2)}\n`)
    return awsCall("s3:PutObject", (abortSignal) =>
      s3.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: key,
          Body: body,
          ContentType: "application/json",
          ChecksumAlgorithm: ChecksumAlgorithm.SHA256,
          ChecksumSHA256: sha256Base64(body)
        }),
        { abortSignal }
      )
    )
  }).pipe(Effect.asVoid)
