import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  HeadObjectCommand,
  UploadPartCopyCommand,
  type Checksum,
  type CompletedPart
} from "@aws-sdk/client-s3"
import { Effect } from "effect"
import { S3, awsCall, type AwsError } from "@backup-actions/aws"
import type { AmiStorageClass } from "@backup-actions/config"
import { StorageClassRefused } from "./errors"

const GIB = 1024 ** 3
const MIB = 1024 ** 2
/** CopyObject copies at most 5 GiB; larger objects go part by part with UploadPartCopy. */
export const SINGLE_COPY_LIMIT = 5 * GIB
/** UploadPartCopy parts: at most 5 GiB, at least 5 MiB (but the last), at most 10,000 of them. */
export const MAX_COPY_PART = 5 * GIB
const MIN_COPY_PART = 5 * MIB
const MAX_PARTS = 10_000
/** Big enough that a 1 TiB image is ~2,000 requests; small enough to retry a part cheaply. */
const DEFAULT_COPY_PART = 512 * MIB

/** A copy part size that fits the object into 10,000 parts of at most 5 GiB. */
export const copyPartSizeFor = (bytes: number, preferred = DEFAULT_COPY_PART): number =>
  Math.min(MAX_COPY_PART, Math.max(MIN_COPY_PART, preferred, Math.ceil(bytes / MAX_PARTS)))

/**
 * Where a stored AMI image is kept: by account, region, instance and the AMI's creation day
 * (UTC), so that a bucket listing reads as a calendar of each instance's images.
 */
export const storedImageKey = (options: {
  readonly account: string
  readonly region: string
  readonly instanceId: string
  readonly imageId: string
  readonly creationDate: Date
}): string => {
  const day = options.creationDate.toISOString().slice(0, 10).split("-").join("/")
  return `recovery-points/${options.account}/${options.region}/${options.instanceId}/${day}/${options.imageId}.bin`
}

export type ChecksumAlgorithmName = "CRC64NVME" | "CRC32C" | "CRC32" | "SHA256" | "SHA1"
const FULL_OBJECT_CRCS: ReadonlyArray<ChecksumAlgorithmName> = ["CRC64NVME", "CRC32C", "CRC32"]
const ALGORITHMS: ReadonlyArray<ChecksumAlgorithmName> = [...FULL_OBJECT_CRCS, "SHA256", "SHA1"]

export interface StoredChecksum {
  readonly algorithm: ChecksumAlgorithmName
  readonly value: string
}

const checksumField = (checksum: Checksum | undefined, algorithm: ChecksumAlgorithmName): string | undefined => {
  switch (algorithm) {
    case "CRC64NVME":
      return checksum?.ChecksumCRC64NVME
    case "CRC32C":
      return checksum?.ChecksumCRC32C
    case "CRC32":
      return checksum?.ChecksumCRC32
    case "SHA256":
      return checksum?.ChecksumSHA256
    case "SHA1":
      return checksum?.ChecksumSHA1
  }
}

/**
 * The checksum S3 keeps over the whole object, if it keeps one: a composite checksum (over
 * parts of unknown size) cannot be recomputed for a copy, so it does not count. (An
 * S3-compatible store may report a composite checksum without its type or "-<parts>" suffix;
 * a copy of such an object then fails verification, which keeps the source.)
 */
export const fullObjectChecksumOf = (checksum: Checksum | undefined): StoredChecksum | undefined => {
  if (checksum?.ChecksumType === "COMPOSITE") return undefined
  for (const algorithm of ALGORITHMS) {
    const value = checksumField(checksum, algorithm)
    if (value !== undefined && !value.includes("-")) return { algorithm, value }
  }
  return undefined
}

/** How a move ended: `verified` is what allows deleting the intermediate object and then the AMI. */
export interface MovedImage {
  readonly bucket: string
  readonly key: string
  readonly bytes: number
  readonly storageClass: string
  readonly parts: number
  readonly checksum: StoredChecksum | undefined
  readonly verified: boolean
  /** Why the copy was not verified, when it was not. */
  readonly reason?: string
}

const copySource = (bucket: string, key: string): string => `${bucket}/${encodeURIComponent(key).replace(/%2F/g, "/")}`

/**
 * Size, storage class and checksum (with its type, where the store gives it). HeadObject with
 * checksum mode rather than GetObjectAttributes, which an S3-compatible store may answer without
 * the size and the class.
 */
const attributesOf = (bucket: string, key: string) =>
  Effect.flatMap(S3, (s3) =>
    awsCall("s3:HeadObject", (abortSignal) => s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key, ChecksumMode: "ENABLED" }), { abortSignal }))
  ).pipe(
    Effect.map((head) => ({
      ObjectSize: head.ContentLength,
      StorageClass: head.StorageClass,
      Checksum: {
        ChecksumCRC64NVME: head.ChecksumCRC64NVME,
        ChecksumCRC32C: head.ChecksumCRC32C,
        ChecksumCRC32: head.ChecksumCRC32,
        ChecksumSHA256: head.ChecksumSHA256,
        ChecksumSHA1: head.ChecksumSHA1,
        ChecksumType: head.ChecksumType
      }
    }))
  )

const refusedClass =
  (storageClass: string, key: string) =>
  (error: AwsError): Effect.Effect<never, AwsError | StorageClassRefused> =>
    error.code === "InvalidStorageClass" ? Effect.fail(new StorageClassRefused({ storageClass, key, reason: error.message })) : Effect.fail(error)

/** One CopyObject into the storage class, with S3 asked to compute the checksum of the copy. */
const copyWhole = (bucket: string, sourceKey: string, targetKey: string, storageClass: AmiStorageClass, algorithm: ChecksumAlgorithmName) =>
  Effect.flatMap(S3, (s3) =>
    awsCall(
      "s3:CopyObject",
      (abortSignal) =>
        s3.send(
          new CopyObjectCommand({
            Bucket: bucket,
            Key: targetKey,
            CopySource: copySource(bucket, sourceKey),
            StorageClass: storageClass,
            ChecksumAlgorithm: algorithm
          }),
          { abortSignal }
        ),
      { timeout: "30 minutes" }
    )
  ).pipe(Effect.catchTag("AwsError", refusedClass(storageClass, targetKey)), Effect.as(1))

const partChecksum = (algorithm: ChecksumAlgorithmName, result: { readonly ChecksumCRC64NVME?: string | undefined; readonly ChecksumCRC32C?: string | undefined; readonly ChecksumCRC32?: string | undefined } | undefined): Partial<CompletedPart> => {
  const value = algorithm === "CRC64NVME" ? result?.ChecksumCRC64NVME : algorithm === "CRC32C" ? result?.ChecksumCRC32C : result?.ChecksumCRC32
  if (value === undefined) return {}
  return algorithm === "CRC64NVME" ? { ChecksumCRC64NVME: value } : algorithm === "CRC32C" ? { ChecksumCRC32C: value } : { ChecksumCRC32: value }
}

/**
 * A multipart copy (UploadPartCopy) into the storage class, as a FULL_OBJECT checksum of the
 * source's CRC algorithm: S3 combines the parts' CRCs into the whole object's, and checks it
 * on completion against the source's value that is sent with it. Aborted if anything fails.
 */
const copyInParts = (options: {
  readonly bucket: string
  readonly sourceKey: string
  readonly targetKey: string
  readonly storageClass: AmiStorageClass
  readonly bytes: number
  readonly partSize: number
  readonly source: StoredChecksum
}) =>
  Effect.gen(function* () {
    const s3 = yield* S3
    const { bucket, targetKey, storageClass, source } = options
    const created = yield* awsCall("s3:CreateMultipartUpload", (abortSignal) =>
      s3.send(
        new CreateMultipartUploadCommand({ Bucket: bucket, Key: targetKey, StorageClass: storageClass, ChecksumAlgorithm: source.algorithm, ChecksumType: "FULL_OBJECT" }),
        { abortSignal }
      )
    ).pipe(Effect.catchTag("AwsError", refusedClass(storageClass, targetKey)))
    const uploadId = created.UploadId ?? ""
    const count = Math.ceil(options.bytes / options.partSize)
    const copyParts = Effect.forEach(
      Array.from({ length: count }, (_, index) => index),
      (index) => {
        const start = index * options.partSize
        const end = Math.min(options.bytes, start + options.partSize) - 1
        return awsCall(
          "s3:UploadPartCopy",
          (abortSignal) =>
            s3.send(
              new UploadPartCopyCommand({
                Bucket: bucket,
                Key: targetKey,
                UploadId: uploadId,
                PartNumber: index + 1,
                CopySource: copySource(bucket, options.sourceKey),
                CopySourceRange: `bytes=${start}-${end}`
              }),
              { abortSignal }
            ),
          { timeout: "30 minutes" }
        ).pipe(Effect.map((copied): CompletedPart => ({ PartNumber: index + 1, ETag: copied.CopyPartResult?.ETag, ...partChecksum(source.algorithm, copied.CopyPartResult) })))
      },
      { concurrency: 4 }
    )
    const expected = partChecksum(source.algorithm, { ChecksumCRC64NVME: source.value, ChecksumCRC32C: source.value, ChecksumCRC32: source.value })
    yield* copyParts.pipe(
      Effect.flatMap((parts) =>
        awsCall(
          "s3:CompleteMultipartUpload",
          (abortSignal) =>
            s3.send(
              new CompleteMultipartUploadCommand({ Bucket: bucket, Key: targetKey, UploadId: uploadId, ChecksumType: "FULL_OBJECT", ...expected, MultipartUpload: { Parts: parts } }),
              { abortSignal }
            ),
          { timeout: "10 minutes" }
        )
      ),
      Effect.onExit((exit) =>
        exit._tag === "Success"
          ? Effect.void
          : awsCall("s3:AbortMultipartUpload", (abortSignal) => s3.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: targetKey, UploadId: uploadId }), { abortSignal })).pipe(
              Effect.ignoreLogged
            )
      )
    )
    return count
  })

const deleteObject = (bucket: string, key: string) =>
  Effect.flatMap(S3, (s3) => awsCall("s3:DeleteObject", (abortSignal) => s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }), { abortSignal })))

/**
 * Moves the object a store-image task wrote into the archive layout and storage class, and
 * verifies the copy: the same size, the storage class asked for, and the same full-object
 * checksum as the source, which S3 computed over the bytes on each side (the copy is made
 * with the source's algorithm requested, so S3 computes it afresh rather than carrying the
 * source's value over). Only then is the intermediate object deleted; an unverified copy is
 * deleted instead and the intermediate kept.
 */
export const moveVerified = (options: {
  readonly bucket: string
  readonly sourceKey: string
  readonly targetKey: string
  readonly storageClass: AmiStorageClass
  readonly singleCopyLimit?: number
  readonly partSize?: number
}) =>
  Effect.gen(function* () {
    const { bucket, sourceKey, targetKey, storageClass } = options
    const source = yield* attributesOf(bucket, sourceKey)
    const bytes = source.ObjectSize ?? 0
    const checksum = fullObjectChecksumOf(source.Checksum)
    const inParts = bytes > (options.singleCopyLimit ?? SINGLE_COPY_LIMIT)
    const unverified = (reason: string): MovedImage => ({ bucket, key: targetKey, bytes, storageClass, parts: 0, checksum, verified: false, reason })
    if (checksum === undefined) return unverified(`${sourceKey} has no full-object checksum in S3 to verify a copy against (${source.Checksum?.ChecksumType ?? "none"})`)
    if (inParts && !FULL_OBJECT_CRCS.includes(checksum.algorithm)) {
      return unverified(`${sourceKey} has a ${checksum.algorithm} checksum, which S3 does not compute over a whole object copied in parts`)
    }
    const parts = inParts
      ? yield* copyInParts({ bucket, sourceKey, targetKey, storageClass, bytes, partSize: copyPartSizeFor(bytes, options.partSize), source: checksum })
      : yield* copyWhole(bucket, sourceKey, targetKey, storageClass, checksum.algorithm)
    const copied = yield* attributesOf(bucket, targetKey)
    const copiedChecksum = checksumField(copied.Checksum, checksum.algorithm)
    const copiedClass = copied.StorageClass ?? "STANDARD"
    const problems = [
      copied.ObjectSize === bytes ? undefined : `size ${copied.ObjectSize ?? "unknown"} differs from the source's ${bytes}`,
      copiedChecksum === checksum.value ? undefined : `${checksum.algorithm} ${copiedChecksum ?? "none"} differs from the source's ${checksum.value}`,
      copiedClass === storageClass ? undefined : `storage class ${copiedClass}, not ${storageClass}`
    ].filter((problem) => problem !== undefined)
    if (problems.length > 0) {
      yield* deleteObject(bucket, targetKey)
      return { ...unverified(`the copy at ${targetKey} did not verify: ${problems.join("; ")}`), parts }
    }
    yield* deleteObject(bucket, sourceKey)
    const moved: MovedImage = { bucket, key: targetKey, bytes, storageClass, parts, checksum, verified: true }
    return moved
  })
