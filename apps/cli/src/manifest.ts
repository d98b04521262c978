import { createWriteStream } from "node:fs"
import { pipeline } from "node:stream/promises"
import { Readable } from "node:stream"
import { GetObjectCommand } from "@aws-sdk/client-s3"
import { Effect, Either } from "effect"
import { parseHeader, readLines } from "@backup-actions/archive"
import { S3, awsCall } from "@backup-actions/aws"
import { ensureReadable } from "./cold-storage"
import { OperationFailed } from "./errors"
import { s3Url, type S3Location } from "./s3-url"

/** An object's body as a Node.js stream. */
export const objectStream = (body: unknown, what: string): Readable => {
  if (body instanceof Readable) return body
  throw new Error(`${what}: the SDK returned no readable body`)
}

/** Downloads the manifest to a local file (streamed) and reads its header; one in GLACIER or DEEP_ARCHIVE is restored first. */
export const fetchManifest = (manifest: S3Location, file: string) =>
  Effect.gen(function* () {
    yield* ensureReadable(manifest)
    const s3 = yield* S3
    const object = yield* awsCall("s3:GetObject", (abortSignal) =>
      s3.send(new GetObjectCommand({ Bucket: manifest.bucket, Key: manifest.key }), { abortSignal })
    ).pipe(
      Effect.catchIf(
        (error) => error.kind === "not-found",
        (error) =>
          Effect.fail(
            new OperationFailed({ message: `the manifest ${s3Url(manifest)} does not exist (${error.code}); an archive is checked against the manifest.ndjson beside it` })
          )
      )
    )
    yield* Effect.tryPromise({
      try: () => pipeline(objectStream(object.Body, s3Url(manifest)), createWriteStream(file)),
      catch: (error) => new OperationFailed({ message: `cannot read the manifest ${s3Url(manifest)}: ${String(error)}` })
    })
    const lines = readLines(file)
    const first = lines.next()
    lines.return(undefined)
    const header = parseHeader(first.done === true ? undefined : first.value)
    if (Either.isLeft(header)) return yield* new OperationFailed({ message: `${s3Url(manifest)}: ${header.left}` })
    return header.right
  })
