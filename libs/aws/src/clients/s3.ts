import { S3Client } from "@aws-sdk/client-s3"
import { Context } from "effect"
import { clientOptions, scopedClient } from "../clients"

/**
 * Buckets are addressed as the SDK's S3 endpoint rules decide: virtual-hosted on AWS, by path
 * when the endpoint is an IP address (which an S3-compatible store on a loopback address is).
 */
export class S3 extends Context.Tag("backup-actions/S3")<S3, S3Client>() {
  static readonly Live = scopedClient(S3, (settings) => new S3Client(clientOptions(settings)))
}
