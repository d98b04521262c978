import { spawn } from "node:child_process"
import { createHash, type Hash } from "node:crypto"
import { Readable, Transform, type TransformCallback } from "node:stream"
import { finished } from "node:stream/promises"
import { createGunzip } from "node:zlib"
import { GetObjectCommand, HeadObjectCommand } from "@aws-sdk/client-s3"
import { Duration, Effect } from "effect"
import { S3, awsCall, type AwsError } from "@backup-actions/aws"
import { ensureReadable } from "./cold-storage"
import { OperationFailed } from "./errors"
import { objectStream } from "./manifest"
import { s3Url, type S3Location } from "./s3-url"

/** An archive object as S3 holds it: its size, its parts' sizes and the checksum S3 keeps. */
export interface ArchiveObject {
  readonly location: S3Location
  readonly size: number
  readonly etag: string
  /** Sizes of the multipart upload's parts, in order; one part for an object put whole. */
  readonly partSizes: ReadonlyArray<number>
  /** S3's SHA-256 checksum of the object, when it keeps one. */
  readonly storedChecksum: string | undefined
}

/**
 * A missing archive, or one in cold storage without a restored copy (it expired since), is the
 * user's to know about, in words; other AWS errors stay as they are.
 */
const missing =
  (location: S3Location) =>
  <A, R>(effect: Effect.Effect<A, AwsError, R>) =>
    Effect.catchIf(
      effect,
      (error) => error.kind === "not-found" || error.code === "InvalidObjectState",
      (error) =>
        Effect.fail(
          new OperationFailed({
            message:
              error.kind === "not-found"
                ? `the archive ${s3Url(location)} does not exist (${error.code})`
                : `the archive ${s3Url(location)} is in cold storage without a restored copy (${error.code}); run the command again to restore it`
          })
        )
    )

/**
 * Finds the part boundaries of an archive. GetObjectAttributes does not return ObjectParts from
 * every S3-compatible endpoint, so each part's size comes from HeadObject with its PartNumber,
 * which every endpoint answers (with the parts count on every answer). An archive in GLACIER or
 * DEEP_ARCHIVE is restored first (at the command's tier, see cold-storage.ts), so that it can be
 * streamed after.
 */
export const describeArchiveObject = (location: S3Location) =>
  Effect.gen(function* () {
    yield* ensureReadable(location)
    const s3 = yield* S3
    const head = (partNumber: number | undefined) =>
      awsCall("s3:HeadObject", (abortSignal) =>
        s3.send(
          new HeadObjectCommand({ Bucket: location.bucket, Key: location.key, ChecksumMode: "ENABLED", ...(partNumber === undefined ? {} : { PartNumber: partNumber }) }),
          { abortSignal }
        )
      ).pipe(missing(location))
    const whole = yield* head(undefined)
    const first = yield* head(1)
    const parts = first.PartsCount ?? 1
    const size = whole.ContentLength ?? 0
    const rest = yield* Effect.forEach(
      Array.from({ length: Math.max(0, parts - 1) }, (_, index) => index + 2),
      (partNumber) => Effect.map(head(partNumber), (answer) => answer.ContentLength ?? 0),
      { concurrency: 8 }
    )
    const partSizes = parts <= 1 ? [size] : [first.ContentLength ?? 0, ...rest]
    const total = partSizes.reduce((sum, part) => sum + part, 0)
    if (total !== size) {
      return yield* new OperationFailed({ message: `${s3Url(location)}: its ${parts} parts add up to ${total} bytes, the object has ${size}` })
    }
    const archive: ArchiveObject = { location, size, etag: whole.ETag ?? "", partSizes, storedChecksum: whole.ChecksumSHA256 }
    return archive
  })

/**
 * SHA-256 per part over bytes fed in order, then SHA-256 over the parts' digests: S3's
 * COMPOSITE checksum, as `<base64>-<parts>`.
 */
export class CompositeChecksum {
  private part = 0
  private inPart = 0
  private hash: Hash = createHash("sha256")
  private readonly digests: Array<Buffer> = []
  bytes = 0

  constructor(private readonly partSizes: ReadonlyArray<number>) {}

  update(chunk: Buffer): void {
    let at = 0
    while (at < chunk.length) {
      const size = this.partSizes[this.part] ?? Number.POSITIVE_INFINITY
      const take = Math.min(chunk.length - at, size - this.inPart)
      this.hash.update(chunk.subarray(at, at + take))
      this.inPart += take
      at += take
      if (this.inPart === size) this.closePart()
    }
    this.bytes += chunk.length
  }

  private closePart(): void {
    this.digests.push(this.hash.digest())
    this.hash = createHash("sha256")
    this.inPart = 0
    this.part += 1
  }

  digest(): string {
    if (this.inPart > 0) this.closePart()
    const whole = createHash("sha256")
    for (const digest of this.digests) whole.update(digest)
    return `${whole.digest("base64")}-${this.digests.length}`
  }
}

/**
 * Whether two composite checksums agree. S3 writes `<base64>-<parts>`; some S3-compatible
 * endpoints drop the suffix, so a missing suffix is not compared.
 */
export const sameComposite = (left: string | undefined, right: string | undefined): boolean => {
  if (left === undefined || right === undefined) return false
  const [leftBase, leftParts] = left.split("-")
  const [rightBase, rightParts] = right.split("-")
  return leftBase === rightBase && (leftParts === undefined || rightParts === undefined || leftParts === rightParts)
}

/** Streams the archive object; every byte passes through `checksum` on its way. */
export const openArchiveStream = (archive: ArchiveObject, checksum: CompositeChecksum, onBytes: (bytes: number) => void) =>
  Effect.gen(function* () {
    const s3 = yield* S3
    const object = yield* awsCall(
      "s3:GetObject",
      (abortSignal) => s3.send(new GetObjectCommand({ Bucket: archive.location.bucket, Key: archive.location.key, IfMatch: archive.etag }), { abortSignal }),
      { timeout: Duration.minutes(2) }
    ).pipe(missing(archive.location))
    const body = objectStream(object.Body, s3Url(archive.location))
    const tap = new Transform({
      transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback) {
        checksum.update(chunk)
        onBytes(checksum.bytes)
        done(null, chunk)
      }
    })
    body.on("error", (error) => tap.destroy(error))
    return body.pipe(tap)
  })

/** A decompressor between the archive's bytes and their content; `done` fails with the decompressor's own words. */
export interface Decompression {
  readonly output: Readable
  readonly done: Promise<void>
}

/**
 * zstd through the `zstd` binary (Node.js's zstd stream stops after the first frame of a
 * multi-frame input, and archives are many frames); gzip members through node:zlib.
 */
export const decompress = (compression: "zstd" | "gzip", input: Readable): Decompression => {
  if (compression === "gzip") {
    const gunzip = createGunzip({ chunkSize: 1024 * 1024 })
    input.on("error", (error) => gunzip.destroy(error))
    input.pipe(gunzip)
    return {
      output: gunzip,
      done: finished(gunzip).catch((error: unknown) => {
        throw new Error(`gzip: ${error instanceof Error ? error.message : String(error)}`)
      })
    }
  }
  const child = spawn("zstd", ["-d", "-c", "-q"], { stdio: ["pipe", "pipe", "pipe"] })
  let errors = ""
  child.stderr.on("data", (data: Buffer) => (errors += data.toString()))
  // zstd stops reading when the data is corrupt; its exit status tells why.
  child.stdin.on("error", () => undefined)
  input.on("error", (error) => {
    errors += `reading the archive: ${error.message}\n`
    child.stdin.destroy()
  })
  input.pipe(child.stdin)
  const done = new Promise<void>((resolve, reject) => {
    child.on("error", (error) => reject(new Error(`cannot run zstd: ${error.message}`)))
    child.on("close", (code, signal) => {
      if (code === 0) resolve()
      else reject(new Error(`zstd: ${errors.trim().replace(/\s+/g, " ") || `exited with ${code ?? signal}`}`))
    })
  })
  return { output: child.stdout, done }
}
