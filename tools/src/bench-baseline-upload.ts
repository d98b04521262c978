/**
 * The benchmark's baseline uploader: what the original Batch job did after `tar -cz`, one
 * streaming upload of standard input with lib-storage. Prints seconds and peak RSS as JSON.
 */
import { parseArgs } from "node:util"
import { S3Client } from "@aws-sdk/client-s3"
import { Upload } from "@aws-sdk/lib-storage"

const { values } = parseArgs({ options: { bucket: { type: "string" }, key: { type: "string" } } })
const started = process.hrtime.bigint()
// The endpoint is the SDK's own AWS_ENDPOINT_URL, as the local stack's environment sets it.
const client = new S3Client({ region: process.env["AWS_REGION"] ?? "us-east-1" })
let bytes = 0
process.stdin.on("data", (data: Buffer) => (bytes += data.length))
const upload = new Upload({ client, params: { Bucket: values.bucket, Key: values.key, Body: process.stdin }, partSize: 8 * 1024 * 1024, queueSize: 4 })
await upload.done()
client.destroy()
const seconds = Number(process.hrtime.bigint() - started) / 1e9
process.stdout.write(`${JSON.stringify({ size: bytes, seconds, maxRssBytes: process.resourceUsage().maxRSS * 1024 })}\n`)
