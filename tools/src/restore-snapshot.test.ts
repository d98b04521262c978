import { randomBytes } from "node:crypto"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { DescribeSnapshotsCommand } from "@aws-sdk/client-ec2"
import { CreateAliasCommand, CreateKeyCommand } from "@aws-sdk/client-kms"
import { GetObjectCommand } from "@aws-sdk/client-s3"
import { Effect, type Layer, type Scope } from "effect"
import { Ec2, Kms, S3, awsCall } from "@backup-actions/aws"
import type { Policy } from "@backup-actions/config"
import { runCli } from "./cli-process"
import { sendRecoveryPointCompleted, snapshotArn, waitForStep } from "./backup-events"
import { EBS_BLOCK, putBlocksAsSnapshot, snapshotBlockDigests } from "./snapshot-blocks"
import { startLocalStack, type LocalStack } from "./stack"

const policy: Policy = {
  rules: [{ name: "direct", match: { resourceTypes: ["EBS"] }, archive: { mode: "direct", compression: "zstd", deleteSourceAfterVerify: false } }]
}

let local: LocalStack
let scratch: string
let stackFile: string
let source: string
let archive: string

const run = <A, E>(effect: Effect.Effect<A, E, Layer.Layer.Success<LocalStack["clients"]> | Scope.Scope>) =>
  Effect.runPromise(Effect.scoped(Effect.provide(effect, local.clients)))
const cli = (...args: ReadonlyArray<string>) => runCli(stackFile, ...args)

/**
 * A 1 GiB snapshot written through the EBS direct APIs with data in blocks 0, 5 and the last,
 * and block 1 written with zeros: listed by EBS, so archived as a block with data.
 */
const writeSource = putBlocksAsSnapshot(
  new Map<number, Buffer>([
    [0, randomBytes(EBS_BLOCK)],
    [1, Buffer.alloc(EBS_BLOCK)],
    [5, randomBytes(EBS_BLOCK)],
    [2047, randomBytes(EBS_BLOCK)]
  ]),
  "restore-snapshot source"
)

const snapshotCount = Effect.flatMap(Ec2, (ec2) =>
  awsCall("ec2:DescribeSnapshots", (abortSignal) => ec2.send(new DescribeSnapshotsCommand({ OwnerIds: ["self"] }), { abortSignal }))
).pipe(Effect.map((described) => described.Snapshots?.length ?? 0))

const manifestHeader = (key: string) =>
  Effect.flatMap(S3, (s3) =>
    awsCall("s3:GetObject", async (abortSignal) => {
      const object = await s3.send(new GetObjectCommand({ Bucket: local.stack.artifactBucket, Key: key.replace(/[^/]+$/, "manifest.ndjson") }), { abortSignal })
      const text = (await object.Body?.transformToString()) ?? ""
      return text.split("\n").filter((line) => line.length > 0).map((line): Record<string, unknown> => JSON.parse(line))
    })
  )

beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), "restore-snapshot-test-"))
  local = await startLocalStack({ name: "restore-snapshot-test", policy, services: ["restorer", "streamer"] })
  stackFile = join(scratch, "stack.json")
  writeFileSync(stackFile, JSON.stringify({ endpoint: local.emulator.endpoint, ...local.stack }, null, 2))
  source = await run(writeSource)
  await run(sendRecoveryPointCompleted({ snapshotId: source, vault: "Default" }))
  const archived = await run(waitForStep(local.stack.ledgerTable, snapshotArn(source), "archive:direct", "5 minutes"))
  assert.strictEqual(archived["status"], "succeeded", String(archived["reason"]))
  archive = `s3://${archived["outcome"].location.bucket}/${archived["outcome"].location.key}`
}, 300_000)

afterAll(async () => {
  await local?.stop()
  if (scratch !== undefined) rmSync(scratch, { recursive: true, force: true })
})

describe("restore --to-snapshot on the emulator", () => {
  it("records the source snapshot in the manifest and restores every block it lists, the one written with zeros too", async () => {
    // Prepare
    const lines = await run(manifestHeader(archive.replace(`s3://${local.stack.artifactBucket}/`, "")))
    // Act
    const restored = await cli("restore", archive, "--to-snapshot")
    // Assess: the manifest says what the source was, and lists the zero block
    assert.deepStrictEqual(lines[0]?.["source"], { snapshotId: source, volumeSize: 1, encrypted: false })
    assert.deepStrictEqual(lines.slice(1).map((line) => line["block"]), [0, 1, 5, 2047])
    // Assess: the new snapshot lists the same blocks as the source, with the same bytes
    assert.strictEqual(restored.status, 0, restored.stderr)
    const snapshotId = restored.stdout.trim()
    assert.match(snapshotId, /^snap-[0-9a-f]+$/)
    assert.match(restored.stderr, new RegExp(`restored ${archive} to ${snapshotId} \\(not encrypted\\): 4 blocks written and read back equal to the manifest`))
    const [copy, original] = await run(Effect.all([snapshotBlockDigests(snapshotId), snapshotBlockDigests(source)]))
    assert.deepStrictEqual(copy.map(([index]) => index), [0, 1, 5, 2047])
    assert.deepStrictEqual(copy, original)
  })

  it("encrypts with the key --kms-key names by alias, and refuses a key KMS does not know before it makes a snapshot", async () => {
    // Prepare
    const keyArn = await run(
      Effect.gen(function* () {
        const kms = yield* Kms
        const created = yield* awsCall("kms:CreateKey", (abortSignal) => kms.send(new CreateKeyCommand({ Description: "restores" }), { abortSignal }))
        yield* awsCall("kms:CreateAlias", (abortSignal) => kms.send(new CreateAliasCommand({ AliasName: "alias/restores", TargetKeyId: created.KeyMetadata?.KeyId }), { abortSignal }))
        return created.KeyMetadata?.Arn ?? ""
      })
    )
    // Act
    const encrypted = await cli("restore", archive, "--to-snapshot", "--kms-key", "alias/restores")
    const before = await run(snapshotCount)
    const unknown = await cli("restore", archive, "--to-snapshot", "--kms-key", "alias/nobody")
    const after = await run(snapshotCount)
    // Assess (the emulator ignores StartSnapshot's encryption: the request itself is checked in apps/cli/src/restore/snapshot.test.ts)
    assert.strictEqual(encrypted.status, 0, encrypted.stderr)
    assert.include(encrypted.stderr, `to ${encrypted.stdout.trim()} (encrypted with ${keyArn}): 4 blocks written`)
    assert.strictEqual(unknown.status, 1)
    assert.match(unknown.stderr, /the KMS key "alias\/nobody" does not exist/)
    assert.strictEqual(unknown.stdout, "")
    assert.strictEqual(after, before)
  })
})
