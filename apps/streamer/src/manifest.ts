import { PassThrough } from "node:stream"
import { once } from "node:events"
import { GetObjectCommand } from "@aws-sdk/client-s3"
import { Upload } from "@aws-sdk/lib-storage"
import { Effect } from "effect"
import { S3, awsCall, toAwsError } from "@backup-actions/aws"
import { deleteFragments } from "./archive-pipeline"

export interface ManifestRequest {
  readonly bucket: string
  readonly key: string
  /** The first line: what the archive is and how to check it. */
  readonly header: Record<string, unknown>
  /** Part fragments: a journal line, then NDJSON lines; the lines are appended in order. */
  readonly fragments: ReadonlyArray<string>
  /** The archives the manifest describes, each with its number of parts: their part fragments are deleted once it is written. */
  readonly archives: ReadonlyArray<{ readonly key: string; readonly parts: number }>
  /** Lines appended after the fragments. */
  readonly lines?: Iterable<string>
}

/** Manifest lines are written to the upload this many characters at a time, about. */
const LINE_BATCH_CHARACTERS = 256 * 1024

const write = (stream: PassThrough, text: string) =>
  Effect.promise(async () => {
    if (!stream.write(text)) await once(stream, "drain")
  })

/**
 * Writes an NDJSON manifest beside an archive: a header line, then one line per file or
 * block. It is streamed through lib-storage, so its size does not weigh on memory. Then the
 * archives' part fragments are deleted: nothing but archives and manifests stays.
 */
export const writeManifest = (request: ManifestRequest) =>
  Effect.gen(function* () {
    const s3 = yield* S3
    const body = new PassThrough()
    const upload = new Upload({
      client: s3,
      params: { Bucket: request.bucket, Key: request.key, Body: body, ContentType: "application/x-ndjson" },
      queueSize: 2,
      partSize: 5 * 1024 * 1024
    })
    const writer = Effect.gen(function* () {
      yield* write(body, `${JSON.stringify(request.header)}\n`)
      for (const fragment of request.fragments) {
        const text = yield* awsCall("s3:GetObject", async (abortSignal) => {
          const object = await s3.send(new GetObjectCommand({ Bucket: request.bucket, Key: fragment }), { abortSignal })
          return object.Body === undefined ? "" : object.Body.transformToString()
        })
        const newline = text.indexOf("\n")
        yield* write(body, newline < 0 ? "" : text.slice(newline + 1))
      }
      // Lines go out in batches: a write per line would be a promise per file of the tree.
      let batch = ""
      for (const line of request.lines ?? []) {
        batch += `${line}\n`
        if (batch.length >= LINE_BATCH_CHARACTERS) {
          yield* write(body, batch)
          batch = ""
        }
      }
      if (batch.length > 0) yield* write(body, batch)
      body.end()
    })
    const uploaded = Effect.tryPromise({ try: () => upload.done(), catch: toAwsError("s3:Upload(manifest)") })
    yield* Effect.all([writer, uploaded], { concurrency: 2, discard: true })
    yield* Effect.forEach(request.archives, (archive) => deleteFragments(request.bucket, archive.key, archive.parts), { discard: true })
  })

/** The header line of a raw disk image's manifest. */
export const rawImageManifestHeader = (options: {
  readonly snapshotId: string
  readonly recoveryPointArn: string
  readonly archiveKey: string
  readonly compression: string
  readonly imageBytes: number
  readonly chunkBytes: number
  readonly blockSize?: number
  readonly archiveBytes: number
  readonly composite: string
  /** The snapshot read, as DescribeSnapshots described it: a restore makes its copy like it (size, encryption). */
  readonly source?: { readonly snapshotId: string; readonly volumeSize: number | undefined; readonly encrypted: boolean; readonly kmsKeyId: string | undefined }
}): Record<string, unknown> => ({
  kind: "backup-actions/raw-image-manifest",
  version: 1,
  snapshotId: options.snapshotId,
  recoveryPointArn: options.recoveryPointArn,
  archive: options.archiveKey,
  compression: options.compression,
  imageBytes: options.imageBytes,
  ...(options.blockSize === undefined ? {} : { blockSize: options.blockSize }),
  chunkBytes: options.chunkBytes,
  archiveBytes: options.archiveBytes,
  checksum: { algorithm: "SHA256", type: "COMPOSITE", value: options.composite },
  ...(options.source === undefined
    ? {}
    : {
        source: {
          snapshotId: options.source.snapshotId,
          ...(options.source.volumeSize === undefined ? {} : { volumeSize: options.source.volumeSize }),
          encrypted: options.source.encrypted,
          ...(options.source.kmsKeyId === undefined ? {} : { kmsKeyId: options.source.kmsKeyId })
        }
      })
})
