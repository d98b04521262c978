import { createHash } from "node:crypto"
import { Readable } from "node:stream"
import {
  AbortMultipartUploadCommand,
  ChecksumAlgorithm,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  HeadObjectCommand,
  ListPartsCommand,
  UploadPartCommand,
  type CompletedPart
} from "@aws-sdk/client-s3"
import { Duration, Effect } from "effect"
import { S3, awsCall } from "@backup-actions/aws"
import { COLD_STORAGE_TAGGING } from "@backup-actions/config"

export interface UploadTarget {
  readonly bucket: string
  readonly key: string
  readonly contentType: string
  readonly metadata?: Record<string, string>
}

export interface UploadedPart {
  readonly partNumber: number
  readonly etag: string
  /** Base64 SHA-256 of the part's bytes, computed here and checked by S3 on receipt. */
  readonly sha256: string
  readonly size: number
}

/** SHA-256 over the parts' SHA-256 digests, then "-<parts>": the composite checksum S3 keeps for the object. */
export const compositeChecksum = (parts: ReadonlyArray<UploadedPart>): string => {
  const hash = createHash("sha256")
  for (const part of parts) hash.update(Buffer.from(part.sha256, "base64"))
  return `${hash.digest("base64")}-${parts.length}`
}

/**
 * Whether a stored checksum is our composite. S3 reports a multipart object's composite
 * as "<base64>-<parts>"; an S3-compatible store may leave off the suffix, which is then not compared.
 */
export const sameComposite = (stored: string | undefined, composite: string): boolean => {
  if (stored === undefined) return false
  const [storedBase, storedParts] = stored.split("-")
  const [base, parts] = composite.split("-")
  return storedBase === base && (storedParts === undefined || storedParts === parts)
}

export const createUpload = (target: UploadTarget) =>
  Effect.flatMap(S3, (s3) =>
    awsCall("s3:CreateMultipartUpload", (abortSignal) =>
      s3.send(
        new CreateMultipartUploadCommand({
          Bucket: target.bucket,
          Key: target.key,
          ContentType: target.contentType,
          ChecksumAlgorithm: ChecksumAlgorithm.SHA256,
          ChecksumType: "COMPOSITE",
          Metadata: target.metadata,
          // An archive may go to cold storage; its manifest, uploaded otherwise, never does.
          Tagging: COLD_STORAGE_TAGGING
        }),
        { abortSignal }
      )
    )
  ).pipe(Effect.map((created) => created.UploadId ?? ""))

/** The parts already stored for an upload, in order; fails if the upload is gone. */
export const listUploadedParts = (target: UploadTarget, uploadId: string) =>
  Effect.gen(function* () {
    const s3 = yield* S3
    const parts: Array<UploadedPart> = []
    let marker: string | undefined
    do {
      const page = yield* awsCall("s3:ListParts", (abortSignal) =>
        s3.send(
          new ListPartsCommand({ Bucket: target.bucket, Key: target.key, UploadId: uploadId, PartNumberMarker: marker }),
          { abortSignal }
        )
      )
      for (const part of page.Parts ?? []) {
        parts.push({
          partNumber: part.PartNumber ?? 0,
          etag: part.ETag ?? "",
          sha256: part.ChecksumSHA256 ?? "",
          size: part.Size ?? 0
        })
      }
      marker = page.IsTruncated === true ? page.NextPartNumberMarker : undefined
    } while (marker !== undefined)
    return parts.sort((a, b) => a.partNumber - b.partNumber)
  })

/**
 * Uploads one part, streamed from its frames (no copy into one buffer), with the SHA-256
 * computed as the frames were gathered, so that S3 rejects the part if a byte changed.
 */
export const uploadPart = (target: UploadTarget, uploadId: string, partNumber: number, frames: ReadonlyArray<Buffer>, sha256: string) =>
  Effect.gen(function* () {
    const s3 = yield* S3
    const size = frames.reduce((total, frame) => total + frame.length, 0)
    const result = yield* awsCall(
      "s3:UploadPart",
      (abortSignal) =>
        s3.send(
          new UploadPartCommand({
            Bucket: target.bucket,
            Key: target.key,
            UploadId: uploadId,
            PartNumber: partNumber,
            // A fresh stream per attempt, so that a retry sends the part again from its start.
            Body: Readable.from(frames, { objectMode: false }),
            ContentLength: size,
            ChecksumAlgorithm: ChecksumAlgorithm.SHA256,
            ChecksumSHA256: sha256
          }),
          { abortSignal }
        ),
      { timeout: Duration.minutes(5) }
    )
    const part: UploadedPart = { partNumber, etag: result.ETag ?? "", sha256, size }
    return part
  })

export interface CompletedUpload {
  readonly composite: string
  /** What S3 reports for the stored object; equal to `composite` when verified. */
  readonly stored: string | undefined
  readonly verified: boolean
  readonly size: number
  /** The stored object's ETag: a read-back reads this version of it. */
  readonly etag: string | undefined
}

/** Completes the upload, then reads back the stored checksum and compares it with ours. */
export const completeUpload = (target: UploadTarget, uploadId: string, parts: ReadonlyArray<UploadedPart>) =>
  Effect.gen(function* () {
    const s3 = yield* S3
    const completed: Array<CompletedPart> = parts.map((part) => ({
      PartNumber: part.partNumber,
      ETag: part.etag,
      ChecksumSHA256: part.sha256
    }))
    yield* awsCall(
      "s3:CompleteMultipartUpload",
      (abortSignal) =>
        s3.send(
          new CompleteMultipartUploadCommand({
            Bucket: target.bucket,
            Key: target.key,
            UploadId: uploadId,
            MultipartUpload: { Parts: completed }
          }),
          { abortSignal }
        ),
      { timeout: Duration.minutes(10) }
    )
    const head = yield* awsCall("s3:HeadObject", (abortSignal) =>
      s3.send(new HeadObjectCommand({ Bucket: target.bucket, Key: target.key, ChecksumMode: "ENABLED" }), { abortSignal })
    )
    const composite = compositeChecksum(parts)
    const size = parts.reduce((total, part) => total + part.size, 0)
    const result: CompletedUpload = {
      composite,
      stored: head.ChecksumSHA256,
      verified: sameComposite(head.ChecksumSHA256, composite) && head.ContentLength === size,
      size,
      etag: head.ETag
    }
    return result
  })

export const abortUpload = (target: UploadTarget, uploadId: string) =>
  Effect.flatMap(S3, (s3) =>
    awsCall("s3:AbortMultipartUpload", (abortSignal) =>
      s3.send(new AbortMultipartUploadCommand({ Bucket: target.bucket, Key: target.key, UploadId: uploadId }), { abortSignal })
    )
  ).pipe(Effect.asVoid)
