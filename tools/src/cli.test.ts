import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { unmarshall } from "@aws-sdk/util-dynamodb"
import { GetItemCommand } from "@aws-sdk/client-dynamodb"
import { CopyObjectCommand, CreateBucketCommand, DeleteBucketCommand, GetObjectCommand, ListObjectsV2Command } from "@aws-sdk/client-s3"
import { DescribeSnapshotsCommand } from "@aws-sdk/client-ec2"
import { Effect, Schedule, Schema, type Layer, type Scope } from "effect"
import { DynamoDb, Ec2, S3, awsCall } from "@backup-actions/aws"
import { DrillRecord, LATEST_DRILLS_PARTITION } from "@backup-actions/ledger"
import type { Policy } from "@backup-actions/config"
import { makeExt4Image, writeSourceTree } from "./seed"
import { putImageAsSnapshot } from "./snapshot-writer"
import { DEMO_VOLUME_ARN, sendRecoveryPointCompleted, snapshotArn, waitForStep } from "./backup-events"
import { copyInSameParts } from "./multipart-copy"
import { snapshotBlockDigests } from "./snapshot-blocks"
import { startLocalStack, type LocalStack } from "./stack"
import { treeFacts } from "./tree-compare"
import { runCli, startCli } from "./cli-process"

const policy: Policy = {
  rules: [
    { name: "volume", match: { resourceTypes: ["EBS"], vaults: ["archive-volume"] }, archive: { mode: "volume", compression: "zstd", deleteSourceAfterVerify: false } },
    { name: "direct", match: { resourceTypes: ["EBS"] }, archive: { mode: "direct", compression: "zstd", deleteSourceAfterVerify: false } }
  ]
}

let local: LocalStack
let scratch: string
let tree: string
let stackFile: string
let startedAt: Date
/** The snapshot archived in both modes. */
let source: { snapshotId: string; volumeBytes: number; blocks: number }
/** The snapshot whose first archive failed for want of a bucket. */
let failedFirst: { snapshotId: string }
let directArchive: string
let volumeArchive: string

const run = <A, E>(effect: Effect.Effect<A, E, Layer.Layer.Success<LocalStack["clients"]> | Scope.Scope>) =>
  Effect.runPromise(Effect.scoped(Effect.provide(effect, local.clients)))

const cli = (...args: ReadonlyArray<string>) => runCli(stackFile, ...args)

const bucket = () => local.stack.artifactBucket

const ledgerItem = (recoveryPointArn: string, action: string) =>
  Effect.flatMap(DynamoDb, (dynamodb) =>
    awsCall("dynamodb:GetItem", (abortSignal) =>
      dynamodb.send(
        new GetItemCommand({ TableName: local.stack.ledgerTable, Key: { pk: { S: recoveryPointArn }, sk: { S: action } }, ConsistentRead: true }),
        { abortSignal }
      )
    )
  ).pipe(Effect.map((answer) => (answer.Item === undefined ? {} : unmarshall(answer.Item))))

/** Waits until the ledger shows the step succeeded (a replay re-runs a failed step some time after it completes). */
const waitForSuccess = (recoveryPointArn: string, action: string) =>
  ledgerItem(recoveryPointArn, action).pipe(
    Effect.filterOrFail((item) => item["status"] === "succeeded", () => new Error(`${action} of ${recoveryPointArn} did not succeed`)),
    Effect.retry({ schedule: Schedule.spaced("500 millis"), times: 240 })
  )

const listObjects = Effect.gen(function* () {
  const s3 = yield* S3
  const objects = new Map<string, string>()
  let token: string | undefined
  do {
    const page = yield* awsCall("s3:ListObjectsV2", (abortSignal) =>
      s3.send(new ListObjectsV2Command({ Bucket: bucket(), ContinuationToken: token }), { abortSignal })
    )
    for (const object of page.Contents ?? []) objects.set(object.Key ?? "", `${object.ETag} ${object.LastModified?.toISOString()}`)
    token = page.IsTruncated === true ? page.NextContinuationToken : undefined
  } while (token !== undefined)
  return objects
})

const getBytes = (key: string) =>
  Effect.flatMap(S3, (s3) =>
    awsCall("s3:GetObject", async (abortSignal) => {
      const object = await s3.send(new GetObjectCommand({ Bucket: bucket(), Key: key }), { abortSignal })
      return Buffer.from((await object.Body?.transformToByteArray()) ?? new Uint8Array(0))
    })
  )

const snapshotBlocks = (snapshotId: string) => Effect.map(snapshotBlockDigests(snapshotId), (blocks) => new Map(blocks))

/**
 * Rewrites an object as a multipart upload with the same part sizes and one byte changed,
 * each part with its SHA-256, so that S3's stored checksum agrees with the changed bytes and
 * only a comparison with the manifest can tell.
 */
const flipOneByte = (sourceKey: string, targetKey: string, at: number) =>
  copyInSameParts(bucket(), sourceKey, targetKey, { change: (bytes) => void (bytes[at] = (bytes[at] ?? 0) ^ 0xff) })

const copyObject = (sourceKey: string, targetKey: string) =>
  Effect.flatMap(S3, (s3) =>
    awsCall("s3:CopyObject", (abortSignal) => s3.send(new CopyObjectCommand({ Bucket: bucket(), Key: targetKey, CopySource: `${bucket()}/${sourceKey}` }), { abortSignal }))
  )

interface DailyReport {
  readonly total: number
  readonly succeeded: number
  readonly failed: number
  readonly entries: ReadonlyArray<{ readonly idempotencyKey: string; readonly status: string }>
}

const today = () => new Date().toISOString().slice(0, 10)

const readDaily = Effect.suspend(() => getBytes(`reports/daily/${today()}/report.json`)).pipe(Effect.map((bytes): DailyReport => JSON.parse(bytes.toString())))

beforeAll(async () => {
  startedAt = new Date(Date.now() - 60_000)
  scratch = mkdtempSync(join(tmpdir(), "cli-test-"))
  tree = join(scratch, "tree")
  writeSourceTree(tree)
  const image = join(scratch, "fs.img")
  makeExt4Image(tree, image, 64)
  const small = join(scratch, "small.img")
  makeExt4Image(join(tree, "small"), small, 8)
  local = await startLocalStack({ name: "cli-test", policy, services: ["restorer", "streamer", "reporter"] })
  stackFile = join(scratch, "stack.json")
  writeFileSync(stackFile, JSON.stringify({ endpoint: local.emulator.endpoint, ...local.stack }, null, 2))

  // An injected failure first: the artifact bucket is gone while a direct-mode archive runs.
  await run(Effect.flatMap(S3, (s3) => awsCall("s3:DeleteBucket", (abortSignal) => s3.send(new DeleteBucketCommand({ Bucket: bucket() }), { abortSignal }))))
  failedFirst = await run(putImageAsSnapshot(small, "archived before its bucket existed"))
  await run(sendRecoveryPointCompleted({ snapshotId: failedFirst.snapshotId, vault: "archive-direct" }))
  const failed = await run(waitForStep(local.stack.ledgerTable, snapshotArn(failedFirst.snapshotId), "archive:direct"))
  assert.strictEqual(failed["status"], "failed")
  assert.match(String(failed["reason"]), /NoSuchBucket/)
  await run(Effect.flatMap(S3, (s3) => awsCall("s3:CreateBucket", (abortSignal) => s3.send(new CreateBucketCommand({ Bucket: bucket() }), { abortSignal }))))

  // Then one snapshot archived in both modes.
  source = await run(putImageAsSnapshot(image, "cli test"))
  await run(sendRecoveryPointCompleted({ snapshotId: source.snapshotId, vault: "archive-direct" }))
  await run(sendRecoveryPointCompleted({ snapshotId: source.snapshotId, vault: "archive-volume" }))
  const direct = await run(waitForStep(local.stack.ledgerTable, snapshotArn(source.snapshotId), "archive:direct"))
  const volume = await run(waitForStep(local.stack.ledgerTable, snapshotArn(source.snapshotId), "archive:volume"))
  assert.strictEqual(direct["status"], "succeeded", String(direct["reason"]))
  assert.strictEqual(volume["status"], "succeeded", String(volume["reason"]))
  assert.strictEqual(volume["outcome"].format, "tar")
  directArchive = `s3://${direct["outcome"].location.bucket}/${direct["outcome"].location.key}`
  volumeArchive = `s3://${volume["outcome"].location.bucket}/${volume["outcome"].location.key}`
}, 600_000)

afterAll(async () => {
  await local?.stop()
  if (scratch !== undefined) rmSync(scratch, { recursive: true, force: true })
})

describe("the backup-actions CLI against the local stack", () => {
  it("replays the archive so that a step that failed for want of a bucket runs again and succeeds", async () => {
    // Prepare
    const arn = snapshotArn(failedFirst.snapshotId)
    // Act
    const replay = await cli("replay", "--from", startedAt.toISOString(), "--to", new Date().toISOString())
    const record = await run(waitForSuccess(arn, "archive:direct"))
    // Assess
    assert.strictEqual(replay.status, 0, replay.stderr)
    assert.match(replay.stdout, /^replay backup-actions-\S+ completed/)
    assert.strictEqual(record["attempts"], 2)
    assert.match(record["outcome"].location.key, new RegExp(`archives/ebs/${failedFirst.snapshotId}/direct/disk\\.img\\.zst$`))
  })

  it("lists every step of a recovery point with its state, attempts and artifact", async () => {
    // Act
    const table = await cli("status", "--recovery-point", snapshotArn(source.snapshotId))
    const json = await cli("status", "--json")
    // Assess
    assert.strictEqual(table.status, 0, table.stderr)
    assert.include(table.stdout, snapshotArn(source.snapshotId))
    assert.match(table.stdout, /archive:direct\s+succeeded\s+1 attempt /)
    assert.match(table.stdout, /restore:volume\s+succeeded/)
    assert.include(table.stdout, `artifact: ${directArchive}`)
    assert.include(table.stdout, `artifact: ${volumeArchive}`)
    const steps: ReadonlyArray<{ recoveryPoint: string; action: string; status: string; attempts: number }> = JSON.parse(json.stdout)
    const retried = steps.find((step) => step.recoveryPoint === snapshotArn(failedFirst.snapshotId) && step.action === "archive:direct")
    assert.deepStrictEqual(retried && { status: retried.status, attempts: retried.attempts }, { status: "succeeded", attempts: 2 })
    assert.isFalse(steps.some((step) => /^(outcome|report)#/.test(step.recoveryPoint)))
  })

  it("restores the volume-mode tar into a directory byte-identical to the source, with modes, owners and links", async () => {
    // Prepare
    const target = join(scratch, "restored-tree")
    // Act
    const restored = await cli("restore", volumeArchive, "--to", target)
    // Assess
    assert.strictEqual(restored.status, 0, restored.stderr)
    assert.match(restored.stdout, /every entry matches the manifest/)
    const expected = treeFacts(tree)
    const actual = treeFacts(target, ["lost+found"])
    assert.deepStrictEqual([...actual.keys()], [...expected.keys()])
    for (const [path, facts] of expected) assert.deepStrictEqual(actual.get(path), facts, path)
  })

  it("restores the direct-mode image to a new snapshot whose blocks equal the source snapshot's", async () => {
    // Act
    const restored = await cli("restore", directArchive, "--to-snapshot")
    // Assess
    assert.strictEqual(restored.status, 0, restored.stderr)
    const snapshotId = restored.stdout.trim()
    assert.match(snapshotId, /^snap-[0-9a-f]+$/)
    assert.notStrictEqual(snapshotId, source.snapshotId)
    const [copy, original] = await run(Effect.all([snapshotBlocks(snapshotId), snapshotBlocks(source.snapshotId)]))
    assert.strictEqual(copy.size, source.blocks)
    assert.deepStrictEqual([...copy.entries()], [...original.entries()])
  })

  it("verifies both archives against their manifests", async () => {
    // Act
    const direct = await cli("verify", directArchive)
    const volume = await cli("verify", volumeArchive)
    // Assess
    assert.strictEqual(direct.status, 0, direct.stderr)
    assert.match(direct.stdout, /matches its manifest: checksum \S+ over \d+ parts, \d+ bytes of raw image/)
    assert.strictEqual(volume.status, 0, volume.stderr)
    assert.match(volume.stdout, /matches its manifest: .* tar entries/)
  })

  it("fails verify and restore with a clear message when one byte of the archive changed", async () => {
    // Prepare: a copy of the direct archive beside a copy of its manifest, one byte changed, S3's checksum consistent with it
    const key = directArchive.slice(`s3://${bucket()}/`.length)
    const corruptKey = key.replace("/direct/", "/corrupted-copy/")
    const original = await run(getBytes(key))
    await run(copyObject(key.replace(/[^/]+$/, "manifest.ndjson"), corruptKey.replace(/[^/]+$/, "manifest.ndjson")))
    await run(flipOneByte(key, corruptKey, Math.floor(original.length / 3)))
    const corrupted = `s3://${bucket()}/${corruptKey}`
    // Act
    const verified = await cli("verify", corrupted)
    const restored = await cli("restore", corrupted, "--to-snapshot")
    // Assess
    assert.strictEqual(verified.status, 1)
    assert.include(verified.stderr, `${corrupted} does not match its manifest`)
    assert.match(verified.stderr, /composite SHA-256 over its \d+ parts is \S+; the manifest says \S+/)
    assert.match(verified.stderr, /the content cannot be read to its end: zstd: /)
    assert.strictEqual(restored.status, 1)
    assert.match(restored.stderr, /the restore of .* failed; snapshot snap-\S+ was not completed and it was deleted/)
    assert.strictEqual(restored.stdout, "")
  })

  it("prints the latest run report in every format, a day's report, and writes the HTML to a file with --open", async () => {
    // Prepare: reports appear a few seconds after the last outcome; a run report covers the outcomes since the one before
    const keys = [`${snapshotArn(source.snapshotId)}#archive:direct`, `${snapshotArn(source.snapshotId)}#archive:volume`]
    await run(
      readDaily.pipe(
        Effect.filterOrFail((daily) => keys.every((key) => daily.entries.some((entry) => entry.idempotencyKey === key)), () => new Error("not reported yet")),
        Effect.retry({ schedule: Schedule.spaced("1 second"), times: 60 })
      )
    )
    const newestRun = [...(await run(listObjects)).keys()].filter((key) => /^reports\/runs\/[^/]+\/report\.json$/.test(key)).sort().at(-1) ?? ""
    const stored = JSON.parse((await run(getBytes(newestRun))).toString())
    // Act
    const json = await cli("report", "--format", "json")
    const text = await cli("report")
    const day = await cli("report", "--day", today(), "--format", "json")
    const csv = await cli("report", "--day", today(), "--format", "csv")
    const opened = await cli("report", "--open")
    // Assess
    assert.strictEqual(json.status, 0, json.stderr)
    assert.deepStrictEqual(JSON.parse(json.stdout), stored)
    assert.strictEqual(text.status, 0, text.stderr)
    assert.include(text.stdout, `${stored.title}\n`)
    assert.include(text.stdout, `${stored.total} outcomes: ${stored.succeeded} succeeded, ${stored.failed} failed`)
    const daily: DailyReport = JSON.parse(day.stdout)
    for (const key of keys) assert.isTrue(daily.entries.some((entry) => entry.idempotencyKey === key && entry.status === "succeeded"), key)
    assert.strictEqual(csv.status, 0, csv.stderr)
    assert.match(csv.stdout, /^time,recovery_point,kind,action,status/)
    assert.strictEqual(opened.status, 0, opened.stderr)
    const htmlFile = opened.stdout.trim()
    assert.isTrue(existsSync(htmlFile))
    assert.match(readFileSync(htmlFile, "utf8"), /<html/i)
  })

  it("replays the whole archive after the run without a new artifact, a deletion, or a change to the report", async () => {
    // Prepare: wait until the day's report holds every finished step, then note what the bucket holds
    const arns = [snapshotArn(source.snapshotId), snapshotArn(failedFirst.snapshotId)]
    const before = await run(
      readDaily.pipe(
        Effect.filterOrFail((daily) => arns.every((arn) => daily.entries.some((entry) => entry.idempotencyKey === `${arn}#archive:direct` && entry.status === "succeeded")), () => new Error("report not complete yet")),
        Effect.retry({ schedule: Schedule.spaced("1 second"), times: 60 })
      )
    )
    const objectsBefore = await run(listObjects)
    const attemptsBefore = await run(Effect.forEach(arns, (arn) => ledgerItem(arn, "archive:direct")))
    // Act
    const replay = await cli("replay", "--from", startedAt.toISOString(), "--to", new Date().toISOString())
    await new Promise((wake) => setTimeout(wake, 10_000))
    // Assess
    assert.strictEqual(replay.status, 0, replay.stderr)
    const objectsAfter = await run(listObjects)
    assert.deepStrictEqual([...objectsAfter.entries()].sort(), [...objectsBefore.entries()].sort())
    const after = await run(readDaily)
    assert.deepStrictEqual({ total: after.total, succeeded: after.succeeded, failed: after.failed }, { total: before.total, succeeded: before.succeeded, failed: before.failed })
    const attemptsAfter = await run(Effect.forEach(arns, (arn) => ledgerItem(arn, "archive:direct")))
    assert.deepStrictEqual(attemptsAfter.map((item) => item["attempts"]), attemptsBefore.map((item) => item["attempts"]))
  })

  it("answers a wrong command line with exit code 2 and a missing archive with exit code 1, each with a clear message", async () => {
    // Act
    const usage = await cli("replay", "--from", "yesterday", "--to", new Date().toISOString())
    const missing = await cli("verify", `s3://${bucket()}/archives/ebs/snap-0000000000000none/direct/disk.img.zst`)
    // Assess
    assert.strictEqual(usage.status, 2)
    assert.match(usage.stderr, /--from "yesterday" is not an ISO 8601 time/)
    assert.strictEqual(missing.status, 1)
    assert.match(missing.stderr, /the manifest s3:\/\/\S+\/manifest\.ndjson does not exist/)
  })
})

describe("restore drills with the backup-actions CLI against the local stack", () => {
  const DrillOutput = Schema.parseJson(Schema.Struct({ ran: Schema.Array(DrillRecord), latest: Schema.Array(DrillRecord) }))

  const latestDrill = (resourceArn: string) =>
    Effect.flatMap(DynamoDb, (dynamodb) =>
      awsCall("dynamodb:GetItem", (abortSignal) =>
        dynamodb.send(new GetItemCommand({ TableName: local.stack.ledgerTable, Key: { pk: { S: LATEST_DRILLS_PARTITION }, sk: { S: resourceArn } }, ConsistentRead: true }), {
          abortSignal
        })
      )
    ).pipe(Effect.map((found) => (found.Item === undefined ? undefined : unmarshall(found.Item))))

  const snapshotExists = (snapshotId: string) =>
    Effect.flatMap(Ec2, (ec2) =>
      awsCall("ec2:DescribeSnapshots", (abortSignal) => ec2.send(new DescribeSnapshotsCommand({ SnapshotIds: [snapshotId] }), { abortSignal }))
    ).pipe(
      Effect.map((described) => (described.Snapshots ?? []).length > 0),
      Effect.catchIf((error) => error.kind === "not-found" || /InvalidSnapshot/.test(error.code), () => Effect.succeed(false))
    )

  it("drills the volume's newest archive into scratch, records the result and its RTO, deletes the scratch, and finds nothing due on a second run", async () => {
    // Prepare: the drill finds artifacts among the outcomes the reporter recorded
    await run(
      readDaily.pipe(
        Effect.filterOrFail((daily) => daily.entries.some((entry) => entry.idempotencyKey === `${snapshotArn(source.snapshotId)}#archive:volume`), () => new Error("not reported yet")),
        Effect.retry({ schedule: Schedule.spaced("1 second"), times: 60 })
      )
    )
    // Act
    const first = await cli("drill", "--every", "1d", "--json")
    const second = await cli("drill", "--every", "1d")
    // Assess
    assert.strictEqual(first.status, 0, first.stderr)
    const { ran } = Schema.decodeUnknownSync(DrillOutput)(first.stdout)
    assert.deepStrictEqual(ran.map((drill) => drill.resourceArn), [DEMO_VOLUME_ARN])
    const drill = ran[0]
    assert.strictEqual(drill?.result, "passed", drill?.reason)
    assert.isAbove(drill?.rtoSeconds ?? 0, 0)
    assert.isTrue(drill?.scratchDeleted)
    assert.match(drill?.artifact ?? "", /^s3:\/\/\S+\/archives\/ebs\/snap-\w+\/(direct\/disk\.img|volume\/files\.tar)\.zst$/)
    const scratch = drill?.scratch ?? ""
    assert.isFalse(scratch.startsWith("snap-") ? await run(snapshotExists(scratch)) : existsSync(scratch), `the scratch ${scratch} is still there`)
    const recorded = await run(latestDrill(DEMO_VOLUME_ARN))
    assert.deepStrictEqual(recorded && { result: recorded["result"], artifact: recorded["artifact"], rtoSeconds: recorded["rtoSeconds"] }, { result: "passed", artifact: drill?.artifact, rtoSeconds: drill?.rtoSeconds })
    assert.strictEqual(second.status, 0, second.stderr)
    assert.match(second.stderr, /no drill is due/)
    assert.match(second.stdout, new RegExp(`^${DEMO_VOLUME_ARN}\\s+\\S+\\s+(snapshot|directory)\\s+passed\\s+[\\d.]+ s\\s+s3://`, "m"))
  })

  it("fails the drill of an archive whose content changed, names why, keeps no scratch, records it and exits 1", async () => {
    // Prepare: a copy of the direct archive with one byte changed, its manifest beside it
    const key = directArchive.slice(`s3://${bucket()}/`.length)
    const corruptKey = key.replace("/direct/", "/drill-corrupted/")
    const original = await run(getBytes(key))
    await run(copyObject(key.replace(/[^/]+$/, "manifest.ndjson"), corruptKey.replace(/[^/]+$/, "manifest.ndjson")))
    await run(flipOneByte(key, corruptKey, Math.floor(original.length / 2)))
    const resource = "arn:aws:ec2:us-east-1:123456789012:volume/vol-0corrupted000000"
    // Act
    const drilled = await cli("drill", "--artifact", `s3://${bucket()}/${corruptKey}`, "--resource", resource)
    // Assess
    assert.strictEqual(drilled.status, 1)
    assert.match(drilled.stderr, /1 of 1 drills failed/)
    assert.match(drilled.stderr, /does not match its manifest|the restore of \S+ failed/)
    assert.match(drilled.stdout, new RegExp(`^${resource}\\s+\\S+\\s+snapshot\\s+failed\\s+-\\s+s3://`, "m"))
    const recorded = await run(latestDrill(resource))
    assert.strictEqual(recorded?.["result"], "failed")
    assert.isTrue(recorded?.["scratchDeleted"])
    assert.match(String(recorded?.["reason"]), /snapshot snap-\S+ was not completed and it was deleted/)
  })

  it("stops a drill on SIGTERM, deleting the scratch snapshot it was writing, and exits 143", async () => {
    // Prepare: a copy of the direct archive under a key of its own, so that its restored snapshots are told by their tag
    const key = directArchive.slice(`s3://${bucket()}/`.length)
    const copyKey = key.replace("/direct/", "/drill-interrupted/")
    await run(copyObject(key.replace(/[^/]+$/, "manifest.ndjson"), copyKey.replace(/[^/]+$/, "manifest.ndjson")))
    await run(copyInSameParts(bucket(), key, copyKey))
    const artifact = `s3://${bucket()}/${copyKey}`
    const restoredFrom = Effect.flatMap(Ec2, (ec2) =>
      awsCall("ec2:DescribeSnapshots", (abortSignal) =>
        ec2.send(new DescribeSnapshotsCommand({ OwnerIds: ["self"], Filters: [{ Name: "tag:backup-actions:restored-from", Values: [artifact] }] }), { abortSignal })
      )
    ).pipe(Effect.map((described) => (described.Snapshots ?? []).map((snapshot) => snapshot.SnapshotId ?? "")))
    // Act: SIGTERM once the scratch snapshot exists and its blocks are being written
    const drill = startCli(stackFile, "drill", "--artifact", artifact, "--resource", "arn:aws:ec2:us-east-1:123456789012:volume/vol-0interrupted00000")
    const started = await run(
      restoredFrom.pipe(
        Effect.filterOrFail((snapshots) => snapshots.length > 0, () => new Error("no scratch snapshot yet")),
        Effect.retry({ schedule: Schedule.spaced("100 millis"), times: 600 })
      )
    )
    drill.child.kill("SIGTERM")
    const ended = await drill.result
    // Assess
    assert.strictEqual(ended.status, 143, ended.stderr)
    assert.include(ended.stderr, "SIGTERM: stopping, and deleting what the command made")
    assert.lengthOf(started, 1)
    assert.deepStrictEqual(await run(restoredFrom), [], "the scratch snapshot is still there")
  })
})
