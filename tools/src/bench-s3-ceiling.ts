/**
 * The benchmark's S3 ceiling: how fast the emulator takes in a multipart upload when nothing
 * else limits it. Bytes that need no compressing (random), each part's SHA-256 computed before
 * the clock starts, the streamer's part size and the streamer's number of parts in flight; the
 * streamer's S3 rows are read as a fraction of this rate. Prints seconds and bytes as JSON.
 *
 *   bench-s3-ceiling --bucket B --key K --bytes N --part-size P --concurrency C
 */
import { createHash, randomBytes } from "node:crypto"
import { Readable } from "node:stream"
import { parseArgs } from "node:util"
import {
  ChecksumAlgorithm,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  S3Client,
  UploadPartCommand,
  type CompletedPart
} from "@aws-sdk/client-s3"

const { values } = parseArgs({
  options: {
    bucket: { type: "string" },
    key: { type: "string" },
    bytes: { type: "string" },
    "part-size": { type: "string" },
    concurrency: { type: "string" }
  }
})
const bucket = values.bucket ?? ""
const key = values.key ?? ""
const total = Number(values.bytes)
const partSize = Number(values["part-size"])
const concurrency = Number(values.concurrency)
if (bucket === "" || key === "" || !(total > 0) || !(partSize > 0) || !(concurrency > 0)) {
  process.stderr.write("usage: bench-s3-ceiling --bucket B --key K --bytes N --part-size P --concurrency C\n")
  process.exit(2)
}

// A few distinct random parts, sent in turn: the emulator stores each part as sent, and the
// client spends no CPU on data or checksums while the clock runs.
const pool = Array.from({ length: 4 }, () => {
  const data = randomBytes(partSize)
  return { data, sha256: createHash("sha256").update(data).digest("base64") }
})
const partCount = Math.ceil(total / partSize)

// The endpoint is the SDK's own AWS_ENDPOINT_URL, as the local stack's environment sets it.
const client = new S3Client({ region: process.env["AWS_REGION"] ?? "us-east-1" })
const started = process.hrtime.bigint()
const created = await client.send(
  new CreateMultipartUploadCommand({ Bucket: bucket, Key: key, ChecksumAlgorithm: ChecksumAlgorithm.SHA256, ChecksumType: "COMPOSITE" })
)
const uploadId = created.UploadId ?? ""
const done: Array<CompletedPart> = []
let next = 1
const worker = async (): Promise<void> => {
  while (next <= partCount) {
    const partNumber = next
    next += 1
    const source = pool[partNumber % pool.length] ?? pool[0]
    if (source === undefined) return
    const length = Math.min(partSize, total - (partNumber - 1) * partSize)
    const sha256 = length === partSize ? source.sha256 : createHash("sha256").update(source.data.subarray(0, length)).digest("base64")
    const result = await client.send(
      new UploadPartCommand({
        Bucket: bucket,
        Key: key,
        UploadId: uploadId,
        PartNumber: partNumber,
        // As the streamer sends a part: a stream over its bytes, with their length and SHA-256.
        Body: Readable.from([source.data.subarray(0, length)], { objectMode: false }),
        ContentLength: length,
        ChecksumAlgorithm: ChecksumAlgorithm.SHA256,
        ChecksumSHA256: sha256
      })
    )
    done.push({ PartNumber: partNumber, ETag: result.ETag, ChecksumSHA256: sha256 })
  }
}
await Promise.all(Array.from({ length: concurrency }, () => worker()))
done.sort((a, b) => (a.PartNumber ?? 0) - (b.PartNumber ?? 0))
await client.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId, MultipartUpload: { Parts: done } }))
const seconds = Number(process.hrtime.bigint() - started) / 1e9
// Nothing reads the measurement's object: it is not kept to weigh on the rest of the run.
await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }))
client.destroy()
process.stdout.write(`${JSON.stringify({ seconds, bytes: total, parts: partCount, size: total, maxRssBytes: process.resourceUsage().maxRSS * 1024 })}\n`)
