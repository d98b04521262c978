import { execFileSync } from "node:child_process"
import { randomBytes } from "node:crypto"
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, truncateSync, copyFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { DescribeSnapshotsCommand, DescribeVolumesCommand } from "@aws-sdk/client-ec2"
import { ScanCommand } from "@aws-sdk/client-dynamodb"
import { GetObjectCommand } from "@aws-sdk/client-s3"
import { unmarshall } from "@aws-sdk/util-dynamodb"
import { Effect, Schedule } from "effect"
import { ReceiveMessageCommand, SendMessageCommand } from "@aws-sdk/client-sqs"
import { DynamoDb, Ec2, S3, Sqs, awsCall } from "@backup-actions/aws"
import { tapTopic, type Tap } from "@backup-actions/local"
import type { Policy } from "@backup-actions/config"
import { makeExt4Image, makePartitionedDisk, sha256OfFile, writeSourceTree } from "./seed"
import { putImageAsSnapshot } from "./snapshot-writer"
import { sendRecoveryPointCompleted, snapshotArn, waitForStep } from "./backup-events"
import { startLocalStack, type LocalStack } from "./stack"
import { downloadWithAwsCli, runOn, type StackServices } from "./test-support"
import { treeFacts } from "./tree-compare"

const policy: Policy = {
  rules: [
    { name: "volume", match: { resourceTypes: ["EBS"], vaults: ["archive-volume"] }, archive: { mode: "volume", compression: "zstd", deleteSourceAfterVerify: false } },
    { name: "direct-and-delete", match: { resourceTypes: ["EBS"], vaults: ["archive-and-delete"] }, archive: { mode: "direct", compression: "zstd", deleteSourceAfterVerify: true } },
    { name: "direct-gzip", match: { resourceTypes: ["EBS"], vaults: ["archive-gzip"] }, archive: { mode: "direct", compression: "gzip", deleteSourceAfterVerify: false } },
    { name: "direct", match: { resourceTypes: ["EBS"] }, archive: { mode: "direct", compression: "zstd", deleteSourceAfterVerify: false } }
  ]
}

let local: LocalStack
let notifications: Tap
let scratch: string
let tree: string
let image: string
let snapshot: { snapshotId: string; volumeBytes: number; blocks: number }

const run = <A, E>(effect: Effect.Effect<A, E, StackServices>) => runOn(local, effect)

beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), "pipeline-test-"))
  tree = join(scratch, "tree")
  image = join(scratch, "fs.img")
  writeSourceTree(tree)
  makeExt4Image(tree, image, 64)
  local = await startLocalStack({ name: "pipeline-test", policy })
  notifications = await run(tapTopic(local.stack.notificationTopicArn, "pipeline-test-notifications"))
  snapshot = await run(putImageAsSnapshot(image, "pipeline test"))
})

afterAll(async () => {
  await local?.stop()
  rmSync(scratch, { recursive: true, force: true })
})

describe("the EBS archive pipeline on the emulator", () => {
  it("archives a snapshot in direct mode to a zstd raw image that is byte-identical to the disk", async () => {
    // Act
    await run(sendRecoveryPointCompleted({ snapshotId: snapshot.snapshotId, vault: "archive-direct" }))
    const record = await run(waitForStep(local.stack.ledgerTable, snapshotArn(snapshot.snapshotId), "archive:direct"))
    // Assess: the ledger outcome
    assert.strictEqual(record["status"], "succeeded")
    const outcome = record["outcome"]
    assert.strictEqual(outcome.verified, "content")
    assert.strictEqual(outcome.sourceDeleted, false)
    assert.strictEqual(outcome.bytesRead, snapshot.volumeBytes)
    // Assess: the archive opens with stock zstd and equals the disk, zeros beyond the filesystem
    const archive = join(scratch, "direct.img.zst")
    downloadWithAwsCli(local, outcome.location, archive)
    const restored = join(scratch, "direct.img")
    execFileSync("zstd", ["-q", "-d", "-f", archive, "-o", restored])
    const expected = join(scratch, "expected.img")
    copyFileSync(image, expected)
    truncateSync(expected, snapshot.volumeBytes)
    assert.strictEqual(statSync(restored).size, snapshot.volumeBytes)
    assert.strictEqual(sha256OfFile(restored), sha256OfFile(expected))
    // Assess: the manifest lists every block with data, with its SHA-256
    const manifest = join(scratch, "direct.manifest.ndjson")
    downloadWithAwsCli(local, outcome.manifest, manifest)
    const lines = readFileSync(manifest, "utf8").trim().split("\n").map((line) => JSON.parse(line))
    assert.strictEqual(lines[0].kind, "backup-actions/raw-image-manifest")
    assert.strictEqual(lines[0].checksum.value, outcome.checksum.value)
    assert.strictEqual(lines.length - 1, snapshot.blocks)
    for (const file of [restored, expected]) rmSync(file)
  })

  it("archives the same snapshot in volume mode to a tar that extracts byte-identical with modes, owners and links", async () => {
    await run(sendRecoveryPointCompleted({ snapshotId: snapshot.snapshotId, vault: "archive-volume" }))
    const restore = await run(waitForStep(local.stack.ledgerTable, snapshotArn(snapshot.snapshotId), "restore:volume"))
    assert.strictEqual(restore["status"], "succeeded")
    const record = await run(waitForStep(local.stack.ledgerTable, snapshotArn(snapshot.snapshotId), "archive:volume"))
    assert.strictEqual(record["status"], "succeeded", String(record["reason"]))
    const outcome = record["outcome"]
    assert.strictEqual(outcome.format, "tar")
    assert.strictEqual(outcome.verified, "content")
    // Extract with stock GNU tar and zstd
    const archive = join(scratch, "files.tar.zst")
    downloadWithAwsCli(local, outcome.location, archive)
    const extracted = join(scratch, "extracted")
    execFileSync("mkdir", ["-p", extracted])
    execFileSync("tar", ["--zstd", "-xpf", archive, "-C", extracted, "--numeric-owner"])
    const source = treeFacts(tree)
    const copy = treeFacts(extracted, ["lost+found"])
    assert.deepStrictEqual([...copy.keys()], [...source.keys()])
    for (const [path, facts] of source) assert.deepStrictEqual(copy.get(path), facts, path)
    // The sparse file came back sparse
    assert.isBelow(statSync(join(extracted, "data", "sparse.img")).blocks * 512, 1024 * 1024)
    // The restorer deleted the volume it made
    const volumeId = restore["outcome"].volumeId
    const gone = await run(
      Effect.gen(function* () {
        const ec2 = yield* Ec2
        for (let attempt = 0; attempt < 100; attempt += 1) {
          const found = yield* awsCall("ec2:DescribeVolumes", (abortSignal) =>
            ec2.send(new DescribeVolumesCommand({ Filters: [{ Name: "volume-id", Values: [volumeId] }] }), { abortSignal })
          )
          if ((found.Volumes ?? []).length === 0) return true
          yield* Effect.sleep("200 millis")
        }
        return false
      })
    )
    assert.isTrue(gone)
  })

  it("finds and mounts the filesystem on a partitioned disk, as on a root volume, its tree under the partition's directory", async () => {
    const disk = join(scratch, "partitioned.img")
    makePartitionedDisk(image, disk)
    const seeded = await run(putImageAsSnapshot(disk, "partitioned disk"))
    await run(sendRecoveryPointCompleted({ snapshotId: seeded.snapshotId, vault: "archive-volume" }))
    const record = await run(waitForStep(local.stack.ledgerTable, snapshotArn(seeded.snapshotId), "archive:volume"))
    assert.strictEqual(record["status"], "succeeded", String(record["reason"]))
    assert.strictEqual(record["outcome"].format, "tar")
    const archive = join(scratch, "partitioned.tar.zst")
    downloadWithAwsCli(local, record["outcome"].location, archive)
    const listing = execFileSync("tar", ["--zstd", "-tf", archive]).toString()
    assert.include(listing, "p1/café/naïve 文件/résumé — ünïcödé.txt")
    assert.include(listing, "p1/links/hardlink-to-file-0001.txt")
    assert.include(listing, "disk-head.img")
    rmSync(disk)
  })

  it("falls back to a raw image of the disk when no filesystem can be mounted", async () => {
    const raw = join(scratch, "no-filesystem.img")
    writeFileSync(raw, Buffer.concat([randomBytes(3 * 1024 * 1024), Buffer.alloc(5 * 1024 * 1024)]))
    const seeded = await run(putImageAsSnapshot(raw, "no filesystem"))
    await run(sendRecoveryPointCompleted({ snapshotId: seeded.snapshotId, vault: "archive-volume" }))
    const record = await run(waitForStep(local.stack.ledgerTable, snapshotArn(seeded.snapshotId), "archive:volume"))
    assert.strictEqual(record["status"], "succeeded", String(record["reason"]))
    assert.strictEqual(record["outcome"].format, "raw")
    const archive = join(scratch, "fallback.img.zst")
    downloadWithAwsCli(local, record["outcome"].location, archive)
    const restored = join(scratch, "fallback.img")
    execFileSync("zstd", ["-q", "-d", "-f", archive, "-o", restored])
    truncateSync(raw, seeded.volumeBytes)
    assert.strictEqual(sha256OfFile(restored), sha256OfFile(raw))
    rmSync(restored)
  })

  it("writes gzip when the policy asks for it, readable by stock gzip", async () => {
    const small = join(scratch, "small.img")
    writeFileSync(small, Buffer.alloc(0))
    makeExt4Image(join(tree, "small"), small, 8)
    const seeded = await run(putImageAsSnapshot(small, "gzip test"))
    await run(sendRecoveryPointCompleted({ snapshotId: seeded.snapshotId, vault: "archive-gzip" }))
    const record = await run(waitForStep(local.stack.ledgerTable, snapshotArn(seeded.snapshotId), "archive:direct"))
    assert.match(record["outcome"].location.key, /\.img\.gz$/)
    const archive = join(scratch, "small.img.gz")
    downloadWithAwsCli(local, record["outcome"].location, archive)
    const head = execFileSync("sh", ["-c", `gzip -dc '${archive}' | head -c ${statSync(small).size} | sha256sum`]).toString().split(" ")[0]
    assert.strictEqual(head, sha256OfFile(small))
  })

  it("deletes the source only after the archive is verified, when the policy asks", async () => {
    const seeded = await run(putImageAsSnapshot(image, "delete test"))
    await run(sendRecoveryPointCompleted({ snapshotId: seeded.snapshotId, vault: "archive-and-delete" }))
    const record = await run(waitForStep(local.stack.ledgerTable, snapshotArn(seeded.snapshotId), "archive:direct"))
    assert.strictEqual(record["outcome"].verified, "content")
    assert.strictEqual(record["outcome"].sourceDeleted, true)
    const remaining = await run(
      Effect.flatMap(Ec2, (ec2) =>
        awsCall("ec2:DescribeSnapshots", (abortSignal) =>
          ec2.send(new DescribeSnapshotsCommand({ Filters: [{ Name: "snapshot-id", Values: [seeded.snapshotId] }] }), { abortSignal })
        )
      )
    )
    assert.deepStrictEqual(remaining.Snapshots ?? [], [])
    // The snapshot archived without deletion is still there
    assert.isTrue(existsSync(image))
  })

  it("sends bad messages to the streamer's DLQ with their reasons and keeps archiving", async () => {
    // Prepare: three bodies no handler can take, straight onto the streamer's queue
    const queue = local.stack.queues.streamer
    assert.isDefined(queue)
    const bad = [
      "not json at all",
      JSON.stringify({ version: "0", id: "1", source: "aws.backup", "detail-type": "Backup Plan State Change", time: "t", region: "us-east-1", resources: [], detail: {} }),
      JSON.stringify({
        version: "0", id: "2", source: "backup-actions", "detail-type": "Restore Completed", time: "t", region: "us-east-1", resources: [],
        detail: { schemaVersion: 99, correlationId: "x", idempotencyKey: "y" }
      })
    ]
    await run(
      Effect.flatMap(Sqs, (sqs) =>
        Effect.forEach(bad, (body) =>
          awsCall("sqs:SendMessage", (abortSignal) => sqs.send(new SendMessageCommand({ QueueUrl: queue?.url, MessageBody: body }), { abortSignal }))
        )
      )
    )
    // Act: a good event after them
    const small = join(scratch, "after-bad.img")
    makeExt4Image(join(tree, "links"), small, 8)
    const seeded = await run(putImageAsSnapshot(small, "after bad input"))
    await run(sendRecoveryPointCompleted({ snapshotId: seeded.snapshotId, vault: "archive-direct" }))
    const record = await run(waitForStep(local.stack.ledgerTable, snapshotArn(seeded.snapshotId), "archive:direct"))
    // Assess
    assert.strictEqual(record["status"], "succeeded")
    const dead = await run(
      Effect.flatMap(Sqs, (sqs) =>
        awsCall("sqs:ReceiveMessage", (abortSignal) =>
          sqs.send(new ReceiveMessageCommand({ QueueUrl: queue?.deadLetterUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 2, MessageAttributeNames: ["All"] }), { abortSignal })
        )
      )
    )
    const reasons = (dead.Messages ?? []).map((message) => message.MessageAttributes?.["backup-actions-reason"]?.StringValue ?? "").sort()
    assert.strictEqual(reasons.length, 3)
    assert.match(reasons[0] ?? "", /^malformed event/)
    assert.match(reasons[1] ?? "", /^unknown event type: source "aws.backup", detail-type "Backup Plan State Change"/)
    assert.match(reasons[2] ?? "", /^unsupported schema version 99 of "Restore Completed"/)
  })

  it("reports a failed restore, with the reason, for a volume-mode snapshot that does not exist", async () => {
    await run(sendRecoveryPointCompleted({ snapshotId: "snap-00000000000000bad", vault: "archive-volume" }))
    const record = await run(waitForStep(local.stack.ledgerTable, snapshotArn("snap-00000000000000bad"), "restore:volume"))
    assert.strictEqual(record["status"], "failed")
    assert.match(String(record["reason"]), /snapshot snap-00000000000000bad does not exist/)
  })

  it("reports a failed archive for a snapshot that does not exist and keeps going", async () => {
    await run(sendRecoveryPointCompleted({ snapshotId: "snap-0000000000000dead", vault: "archive-direct" }))
    const record = await run(waitForStep(local.stack.ledgerTable, snapshotArn("snap-0000000000000dead"), "archive:direct"))
    assert.strictEqual(record["status"], "failed")
    assert.match(String(record["reason"]), /snap-0000000000000dead: the snapshot does not exist/)
  })

  it("reports every finished step in the day's report, with the ledger's status, and announces each failure once", async () => {
    // Prepare: the steps the ledger finished in this run that announce an outcome (a source's
    // deletion is a step of its own, announced inside its artifact's outcome)
    const scanned = await run(
      Effect.flatMap(DynamoDb, (dynamodb) =>
        awsCall("dynamodb:Scan", (abortSignal) => dynamodb.send(new ScanCommand({ TableName: local.stack.ledgerTable, ConsistentRead: true }), { abortSignal }))
      )
    )
    const steps = (scanned.Items ?? [])
      .map((item) => unmarshall(item))
      .filter((item) => !/^(outcome|report)#/.test(String(item["pk"])) && item["event"] !== undefined && (item["status"] === "succeeded" || item["status"] === "failed"))
      .map((item) => `${String(item["pk"])}#${String(item["sk"])} ${String(item["status"])}`)
      .sort()
    const failures = steps.filter((step) => step.endsWith(" failed")).length
    // Act: wait for the reporter to go quiet and write the day's report
    const day = new Date().toISOString().slice(0, 10)
    const readDaily = Effect.flatMap(S3, (s3) =>
      awsCall("s3:GetObject", (abortSignal) =>
        s3.send(new GetObjectCommand({ Bucket: local.stack.artifactBucket, Key: `reports/daily/${day}/report.json` }), { abortSignal })
      )
    ).pipe(
      Effect.flatMap((object) => Effect.promise(() => object.Body?.transformToString() ?? Promise.resolve("{}"))),
      Effect.map((text): { entries: ReadonlyArray<{ idempotencyKey: string; status: string }> } => JSON.parse(text)),
      Effect.filterOrFail((report) => report.entries.length >= steps.length),
      Effect.retry({ schedule: Schedule.spaced("1 second"), times: 60 })
    )
    const report = await run(readDaily)
    const notified = await run(notifications.drain(1))
    // Assess
    assert.deepStrictEqual(report.entries.map((entry) => `${entry.idempotencyKey} ${entry.status}`).sort(), steps)
    assert.isAbove(failures, 0)
    assert.strictEqual(notified.length, failures)
  })
})
