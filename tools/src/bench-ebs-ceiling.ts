/**
 * The benchmark's EBS read ceiling: how fast the emulator serves a snapshot's blocks through
 * GetSnapshotBlock when nothing else limits it. It lists the blocks and reads every one of them
 * with the streamer's number of reads in flight, and does nothing with the bytes (no checksum,
 * no compression). Prints seconds, the bytes read and the image's size as JSON.
 *
 *   bench-ebs-ceiling --snapshot-id S --concurrency C
 */
import { parseArgs } from "node:util"
import { EBSClient, GetSnapshotBlockCommand, ListSnapshotBlocksCommand, type Block } from "@aws-sdk/client-ebs"

const { values } = parseArgs({ options: { "snapshot-id": { type: "string" }, concurrency: { type: "string" } } })
const snapshotId = values["snapshot-id"] ?? ""
const concurrency = Number(values.concurrency)
if (snapshotId === "" || !(concurrency > 0)) {
  process.stderr.write("usage: bench-ebs-ceiling --snapshot-id S --concurrency C\n")
  process.exit(2)
}

// The endpoint is the SDK's own AWS_ENDPOINT_URL, as the local stack's environment sets it.
const client = new EBSClient({ region: process.env["AWS_REGION"] ?? "us-east-1" })
const started = process.hrtime.bigint()
const blocks: Array<Block> = []
let volumeGiB = 0
let nextToken: string | undefined
do {
  const page = await client.send(new ListSnapshotBlocksCommand({ SnapshotId: snapshotId, MaxResults: 10_000, NextToken: nextToken }))
  blocks.push(...(page.Blocks ?? []))
  volumeGiB = page.VolumeSize ?? volumeGiB
  nextToken = page.NextToken
} while (nextToken !== undefined)
let bytes = 0
let next = 0
const worker = async (): Promise<void> => {
  while (next < blocks.length) {
    const block = blocks[next]
    next += 1
    const read = await client.send(new GetSnapshotBlockCommand({ SnapshotId: snapshotId, BlockIndex: block?.BlockIndex ?? 0, BlockToken: block?.BlockToken }))
    // Read into a constant first: `bytes += await …` would add to the total as it was before the wait.
    const data = await read.BlockData?.transformToByteArray()
    bytes += data?.length ?? 0
  }
}
await Promise.all(Array.from({ length: concurrency }, () => worker()))
const seconds = Number(process.hrtime.bigint() - started) / 1e9
client.destroy()
process.stdout.write(
  `${JSON.stringify({ seconds, bytes, blocks: blocks.length, imageBytes: volumeGiB * 1024 ** 3, size: bytes, maxRssBytes: process.resourceUsage().maxRSS * 1024 })}\n`
)
