import { randomBytes } from "node:crypto"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import {
  CopyObjectCommand,
  GetObjectCommand,
  GetObjectTaggingCommand,
  HeadObjectCommand,
  PutObjectCommand,
  RestoreObjectCommand,
  type StorageClass
} from "@aws-sdk/client-s3"
import { Effect } from "effect"
import { S3, awsCall } from "@backup-actions/aws"
import { COLD_STORAGE_TAG, type Policy } from "@backup-actions/config"
import { sendRecoveryPointCompleted, snapshotArn, waitForStep } from "./backup-events"
import { runCli } from "./cli-process"
import { putImageAsSnapshot } from "./snapshot-writer"
import { copyInSameParts } from "./multipart-copy"
import { startLocalStack, type LocalStack } from "./stack"
import { runOn, type StackServices } from "./test-support"

const policy: Policy = {
  rules: [{ name: "direct", match: { resourceTypes: ["EBS"] }, archive: { mode: "direct", compression: "zstd", deleteSourceAfterVerify: false } }]
}

let local: LocalStack
let scratch: string
let stackFile: string
/** The key of the direct-mode archive the streamer wrote, in STANDARD. */
let archiveKey: string

const run = <A, E>(effect: Effect.Effect<A, E, StackServices>) => runOn(local, effect)
const cli = (...args: ReadonlyArray<string>) => runCli(stackFile, ...args)
const bucket = () => local.stack.artifactBucket
const manifestOf = (key: string) => key.replace(/[^/]+$/, "manifest.ndjson")

const head = (key: string) =>
  Effect.flatMap(S3, (s3) => awsCall("s3:HeadObject", (abortSignal) => s3.send(new HeadObjectCommand({ Bucket: bucket(), Key: key }), { abortSignal })))

/** GetObject's error code, or "read" when the object could be read. */
const readOutcome = (key: string) =>
  Effect.flatMap(S3, (s3) =>
    awsCall("s3:GetObject", async (abortSignal) => {
      const object = await s3.send(new GetObjectCommand({ Bucket: bucket(), Key: key }), { abortSignal })
      await object.Body?.transformToByteArray()
      return "read"
    })
  ).pipe(Effect.catchTag("AwsError", (error) => Effect.succeed(error.code)))

const tagsOf = (key: string) =>
  Effect.flatMap(S3, (s3) => awsCall("s3:GetObjectTagging", (abortSignal) => s3.send(new GetObjectTaggingCommand({ Bucket: bucket(), Key: key }), { abortSignal }))).pipe(
    Effect.map((answer) => Object.fromEntries((answer.TagSet ?? []).map((tag) => [tag.Key ?? "", tag.Value ?? ""])))
  )

/**
 * Writes a copy of an archive in a cold storage class, as a lifecycle transition leaves it: the
 * same bytes in the same parts, each with its SHA-256, so that S3's composite checksum is the one
 * the manifest holds.
 */
const archiveCopyIn = (storageClass: StorageClass, sourceKey: string, targetKey: string) =>
  Effect.gen(function* () {
    const s3 = yield* S3
    yield* copyInSameParts(bucket(), sourceKey, targetKey, { storageClass })
    yield* awsCall("s3:CopyObject", (abortSignal) =>
      s3.send(
        new CopyObjectCommand({ Bucket: bucket(), Key: manifestOf(targetKey), CopySource: `${bucket()}/${manifestOf(sourceKey)}`, StorageClass: storageClass }),
        { abortSignal }
      )
    )
  })

/** How the emulator progresses a restore: at once (undefined, its default), or through its state manager's transition. */
const restoreTakes = async (transition: { readonly progression: "time"; readonly seconds: number } | undefined): Promise<void> => {
  const action = transition === undefined ? "unset-transition" : "set-transition"
  const response = await fetch(`${local.emulator.endpoint}/moto-api/state-manager/${action}`, {
    method: "POST",
    body: JSON.stringify({ model_name: "s3::keyrestore", ...(transition === undefined ? {} : { transition }) }),
    signal: AbortSignal.timeout(5_000)
  })
  assert.strictEqual(response.status, 201, await response.text())
}

beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), "cold-storage-test-"))
  // A small disk: random data, then zeros.
  const image = join(scratch, "disk.img")
  writeFileSync(image, Buffer.concat([randomBytes(3 * 1024 * 1024), Buffer.alloc(5 * 1024 * 1024)]))
  local = await startLocalStack({ name: "cold-storage-test", policy, services: ["restorer", "streamer"] })
  stackFile = join(scratch, "stack.json")
  writeFileSync(stackFile, JSON.stringify({ endpoint: local.emulator.endpoint, ...local.stack }, null, 2))
  const source = await run(putImageAsSnapshot(image, "cold storage test"))
  await run(sendRecoveryPointCompleted({ snapshotId: source.snapshotId, vault: "archive-direct" }))
  const step = await run(waitForStep(local.stack.ledgerTable, snapshotArn(source.snapshotId), "archive:direct"))
  assert.strictEqual(step["status"], "succeeded", String(step["reason"]))
  archiveKey = step["outcome"].location.key
}, 600_000)

afterAll(async () => {
  await local?.stop()
  if (scratch !== undefined) rmSync(scratch, { recursive: true, force: true })
})

describe("archives in cold storage on the emulator", () => {
  it("tags the archive for the lifecycle's cold-storage transitions, and never its manifest", async () => {
    // Act
    const [archiveTags, manifestTags] = await run(Effect.all([tagsOf(archiveKey), tagsOf(manifestOf(archiveKey))]))
    // Assess
    assert.deepStrictEqual(archiveTags, { [COLD_STORAGE_TAG.key]: COLD_STORAGE_TAG.value })
    assert.deepStrictEqual(manifestTags, {})
  })

  it("keeps a GLACIER object unreadable until RestoreObject, which the emulator completes at once", async () => {
    // Prepare
    const key = "archives/test/glacier-object.bin"
    await run(
      Effect.flatMap(S3, (s3) =>
        awsCall("s3:PutObject", (abortSignal) => s3.send(new PutObjectCommand({ Bucket: bucket(), Key: key, Body: "cold", StorageClass: "GLACIER" }), { abortSignal }))
      )
    )
    // Act
    const before = await run(readOutcome(key))
    await run(
      Effect.flatMap(S3, (s3) =>
        awsCall("s3:RestoreObject", (abortSignal) =>
          s3.send(new RestoreObjectCommand({ Bucket: bucket(), Key: key, RestoreRequest: { Days: 1, GlacierJobParameters: { Tier: "Bulk" } } }), { abortSignal })
        )
      )
    )
    const after = await run(readOutcome(key))
    const restored = await run(head(key))
    // Assess
    assert.strictEqual(before, "InvalidObjectState")
    assert.strictEqual(after, "read")
    assert.strictEqual(restored.StorageClass, "GLACIER")
    assert.match(restored.Restore ?? "", /ongoing-request="false"/)
  })

  it("verifies an archive and manifest in GLACIER by restoring both first, then reading them", async () => {
    // Prepare
    const coldKey = archiveKey.replace("/direct/", "/glacier-copy/")
    await run(archiveCopyIn("GLACIER", archiveKey, coldKey))
    const unreadable = await run(Effect.all([readOutcome(coldKey), readOutcome(manifestOf(coldKey))]))
    // Act
    const verified = await cli("verify", `s3://${bucket()}/${coldKey}`, "--tier", "Expedited")
    // Assess
    assert.deepStrictEqual(unreadable, ["InvalidObjectState", "InvalidObjectState"])
    assert.strictEqual(verified.status, 0, verified.stderr)
    assert.match(verified.stdout, /matches its manifest: checksum \S+ over \d+ parts, \d+ bytes of raw image/)
    assert.include(verified.stderr, `asked S3 to restore s3://${bucket()}/${coldKey} from GLACIER (Expedited retrieval, typically 1 min–5 min)`)
    assert.include(verified.stderr, `asked S3 to restore s3://${bucket()}/${manifestOf(coldKey)} from GLACIER`)
    const [archive, manifest] = await run(Effect.all([head(coldKey), head(manifestOf(coldKey))]))
    assert.match(archive.Restore ?? "", /ongoing-request="false"/)
    assert.match(manifest.Restore ?? "", /ongoing-request="false"/)
  })

  it("reads an archive whose restored copy is already there without asking again", async () => {
    // Prepare: the copy restored by the previous test
    const coldKey = archiveKey.replace("/direct/", "/glacier-copy/")
    // Act
    const verified = await cli("verify", `s3://${bucket()}/${coldKey}`)
    // Assess
    assert.strictEqual(verified.status, 0, verified.stderr)
    assert.notInclude(verified.stderr, "asked S3 to restore")
  })

  it("shows what it waits for and the ETA while S3 is still restoring, then verifies", async () => {
    // Prepare: the emulator's restores take a few seconds instead of none (its state manager)
    const slowKey = archiveKey.replace("/direct/", "/slow-glacier-copy/")
    await run(archiveCopyIn("GLACIER", archiveKey, slowKey))
    await new Promise((resolve) => setTimeout(resolve, 3_000))
    await restoreTakes({ progression: "time", seconds: 2 })
    try {
      // Act
      const verified = await cli("verify", `s3://${bucket()}/${slowKey}`, "--tier", "Expedited")
      // Assess
      assert.strictEqual(verified.status, 0, verified.stderr)
      assert.match(
        verified.stderr,
        new RegExp(`waiting for S3 to restore s3://${bucket()}/${slowKey} from GLACIER \\(Expedited retrieval, typically 1 min–5 min\\): \\d+ s so far, ETA \\d+ (s|min)–\\d+ min`)
      )
      assert.match(verified.stdout, /matches its manifest/)
    } finally {
      await restoreTakes(undefined)
    }
  }, 120_000)

  it("refuses Expedited for an archive in DEEP_ARCHIVE with a usage error, before asking S3 to restore it", async () => {
    // Prepare
    const deepKey = archiveKey.replace("/direct/", "/deep-archive-copy/")
    await run(archiveCopyIn("DEEP_ARCHIVE", archiveKey, deepKey))
    // Act
    const refused = await cli("verify", `s3://${bucket()}/${deepKey}`, "--tier", "Expedited")
    // Assess
    assert.strictEqual(refused.status, 2)
    // The manifest beside the archive is looked at first.
    assert.include(refused.stderr, `s3://${bucket()}/${manifestOf(deepKey)} is in DEEP_ARCHIVE, which offers no Expedited retrieval; choose --tier Standard`)
    assert.include(refused.stderr, "Run `backup-actions verify --help` for usage.")
    const [archive, manifest] = await run(Effect.all([head(deepKey), head(manifestOf(deepKey))]))
    assert.isUndefined(archive.Restore)
    assert.isUndefined(manifest.Restore)
  })

  it("restores an archive in DEEP_ARCHIVE to a new snapshot at the Bulk tier", async () => {
    // Prepare
    const deepKey = archiveKey.replace("/direct/", "/deep-archive-copy/")
    // Act
    const restored = await cli("restore", `s3://${bucket()}/${deepKey}`, "--to-snapshot", "--tier", "Bulk")
    // Assess
    assert.strictEqual(restored.status, 0, restored.stderr)
    assert.match(restored.stdout.trim(), /^snap-[0-9a-f]+$/)
    assert.include(restored.stderr, `asked S3 to restore s3://${bucket()}/${deepKey} from DEEP_ARCHIVE (Bulk retrieval, typically within 48 h)`)
  })
})
