import { S3Client } from "@aws-sdk/client-s3"
import { Context } from "effect"
import { clientOptions, isEmulated, scopedClient } from "../clients"

export class S3 extends Context.Tag("backup-actions/S3")<S3, S3Client>() {
  static readonly Live = scopedClient(S3, (settings) => new S3Client({ ...clientOptions(settings), forcePathStyle: isEmulated(settings) }))
}
