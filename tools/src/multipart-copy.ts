import { createHash } from "node:crypto"
import { CompleteMultipartUploadCommand, CreateMultipartUploadCommand, GetObjectCommand, HeadObjectCommand, UploadPartCommand, type StorageClass } from "@aws-sdk/client-s3"
import { Effect } from "effect"
import { S3, awsCall } from "@backup-actions/aws"

/**
 * Writes a copy of a multipart object in the same parts, each with its SHA-256, so that S3's
 * composite checksum is computed as the original's was: over the original bytes, the copy has the
 * checksum its manifest holds; with `change` applied to the bytes first, S3 accepts the changed
 * copy and only a comparison with the manifest can tell. Returns the number of parts.
 */
export const copyInSameParts = (
  bucket: string,
  sourceKey: string,
  targetKey: string,
  options: { readonly storageClass?: StorageClass; readonly change?: (bytes: Buffer) => void } = {}
) =>
  Effect.gen(function* () {
    const s3 = yield* S3
    const first = yield* awsCall("s3:HeadObject", (abortSignal) => s3.send(new HeadObjectCommand({ Bucket: bucket, Key: sourceKey, PartNumber: 1 }), { abortSignal }))
    const sizes = yield* Effect.forEach(Array.from({ length: first.PartsCount ?? 1 }, (_, index) => index + 1), (partNumber) =>
      awsCall("s3:HeadObject", (abortSignal) => s3.send(new HeadObjectCommand({ Bucket: bucket, Key: sourceKey, PartNumber: partNumber }), { abortSignal })).pipe(
        Effect.map((head) => head.ContentLength ?? 0)
      )
    )
    const bytes = yield* awsCall("s3:GetObject", async (abortSignal) => {
      const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: sourceKey }), { abortSignal })
      return Buffer.from((await object.Body?.transformToByteArray()) ?? new Uint8Array(0))
    })
    options.change?.(bytes)
    const upload = yield* awsCall("s3:CreateMultipartUpload", (abortSignal) =>
      s3.send(
        new CreateMultipartUploadCommand({
          Bucket: bucket,
          Key: targetKey,
          ChecksumAlgorithm: "SHA256",
          ChecksumType: "COMPOSITE",
          ...(options.storageClass === undefined ? {} : { StorageClass: options.storageClass })
        }),
        { abortSignal }
      )
    )
    let offset = 0
    const parts = yield* Effect.forEach(sizes, (size, index) =>
      Effect.gen(function* () {
        const body = bytes.subarray(offset, offset + size)
        offset += size
        const checksum = createHash("sha256").update(body).digest("base64")
        const uploaded = yield* awsCall("s3:UploadPart", (abortSignal) =>
          s3.send(
            new UploadPartCommand({ Bucket: bucket, Key: targetKey, UploadId: upload.UploadId, PartNumber: index + 1, Body: body, ChecksumAlgorithm: "SHA256", ChecksumSHA256: checksum }),
            { abortSignal }
          )
        )
        return { PartNumber: index + 1, ETag: uploaded.ETag, ChecksumSHA256: checksum }
      })
    )
    yield* awsCall("s3:CompleteMultipartUpload", (abortSignal) =>
      s3.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: targetKey, UploadId: upload.UploadId, MultipartUpload: { Parts: parts } }), { abortSignal })
    )
    return sizes.length
  })
