import { Either } from "effect"

/** An object in S3. */
export interface S3Location {
  readonly bucket: string
  readonly key: string
}

/** Reads `s3://bucket/key`; the reason on the left says what is wrong with it. */
export const parseS3Url = (text: string): Either.Either<S3Location, string> => {
  const match = /^s3:\/\/([^/]+)\/(.+)$/.exec(text)
  if (match === null) return Either.left(`"${text}" is not an S3 URL like s3://bucket/archives/ebs/snap-.../disk.img.zst`)
  const [, bucket = "", key = ""] = match
  if (key.endsWith("/")) return Either.left(`"${text}" names a folder, not an archive object`)
  return Either.right({ bucket, key })
}

export const s3Url = (location: S3Location): string => `s3://${location.bucket}/${location.key}`

/** The manifest that the streamer writes beside every archive. */
export const manifestBeside = (archive: S3Location): S3Location => {
  const slash = archive.key.lastIndexOf("/")
  return { bucket: archive.bucket, key: `${slash < 0 ? "" : archive.key.slice(0, slash + 1)}manifest.ndjson` }
}
