import { execFileSync } from "node:child_process"
import { randomBytes } from "node:crypto"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { DescribeSnapshotsCommand } from "@aws-sdk/client-ec2"
import { GetItemCommand } from "@aws-sdk/client-dynamodb"
import { unmarshall } from "@aws-sdk/util-dynamodb"
import { Effect, type Layer, type Scope } from "effect"
import { DynamoDb, Ec2, awsCall } from "@backup-actions/aws"
import { sha256OfFile } from "./seed"
import { putImageAsSnapshot } from "./snapshot-writer"
import { sendRecoveryPointCompleted, snapshotArn, waitForStep } from "./backup-events"
import { startLocalStack, type LocalStack } from "./stack"

let local: LocalStack
let scratch: string

const run = <A, E>(effect: Effect.Effect<A, E, Layer.Layer.Success<LocalStack["clients"]> | Scope.Scope>) =>
  Effect.runPromise(Effect.scoped(Effect.provide(effect, local.clients)))

const ledgerItem = (recoveryPointArn: string) =>
  run(
    Effect.flatMap(DynamoDb, (dynamodb) =>
      awsCall("dynamodb:GetItem", (abortSignal) =>
        dynamodb.send(
          new GetItemCommand({ TableName: local.stack.ledgerTable, Key: { pk: { S: recoveryPointArn }, sk: { S: "archive:direct" } }, ConsistentRead: true }),
          { abortSignal }
        )
      )
    )
  ).then((result) => (result.Item === undefined ? undefined : unmarshall(result.Item)))

const snapshotExists = (snapshotId: string) =>
  run(
    Effect.flatMap(Ec2, (ec2) =>
      awsCall("ec2:DescribeSnapshots", (abortSignal) =>
        ec2.send(new DescribeSnapshotsCommand({ Filters: [{ Name: "snapshot-id", Values: [snapshotId] }] }), { abortSignal })
      )
    )
  ).then((result) => (result.Snapshots ?? []).length === 1)

beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), "resume-test-"))
  local = await startLocalStack({
    name: "resume-test",
    policy: { rules: [{ name: "direct", match: { resourceTypes: ["EBS"] }, archive: { mode: "direct", compression: "zstd", deleteSourceAfterVerify: true } }] },
    // Short enough that a killed worker's message and step come back within the test.
    serviceEnvironment: { BACKUP_ACTIONS_VISIBILITY_SECONDS: "6", BACKUP_ACTIONS_STEP_LEASE_SECONDS: "6" }
  })
})

afterAll(async () => {
  await local?.stop()
  rmSync(scratch, { recursive: true, force: true })
})

describe("a streamer killed mid-archive", () => {
  it("resumes the same multipart upload on restart, writes a correct archive, and keeps the source until then", async () => {
    // Prepare: 192 MiB of incompressible data, so that the archive takes many 8 MiB parts
    const image = join(scratch, "random.img")
    writeFileSync(image, randomBytes(192 * 1024 * 1024))
    const snapshot = await run(putImageAsSnapshot(image, "resume test"))
    const arn = snapshotArn(snapshot.snapshotId)

    // Act: start the archive, kill -9 the streamer once a few parts are recorded
    await run(sendRecoveryPointCompleted({ snapshotId: snapshot.snapshotId, vault: "Default" }))
    let before: Record<string, unknown> | undefined
    for (let attempt = 0; attempt < 600; attempt += 1) {
      before = await ledgerItem(arn)
      const upload = before?.["upload"] as { partsDone: number } | undefined
      if (upload !== undefined && upload.partsDone >= 3) break
      await new Promise((wake) => setTimeout(wake, 50))
    }
    await local.stopService("streamer", "SIGKILL")
    const atKill = (await ledgerItem(arn)) ?? {}
    const uploadAtKill = atKill["upload"] as { uploadId: string; partsDone: number }
    assert.strictEqual(atKill["status"], "running")
    assert.isAtLeast(uploadAtKill.partsDone, 3)
    assert.isTrue(await snapshotExists(snapshot.snapshotId), "the source must survive the crash")

    local.startService("streamer")
    const record = await run(waitForStep(local.stack.ledgerTable, arn, "archive:direct", "5 minutes"))

    // Assess: same upload resumed after the recorded parts, archive verified and correct, then the source deleted
    assert.strictEqual(record["status"], "succeeded", String(record["reason"]))
    const outcome = record["outcome"]
    assert.isAtLeast(outcome.resumedAfterPart, uploadAtKill.partsDone)
    assert.strictEqual(record["attempts"], 2)
    assert.strictEqual(outcome.verified, "content")
    const archive = join(scratch, "resumed.img.zst")
    execFileSync("aws", ["--endpoint-url", local.emulator.endpoint, "s3", "cp", `s3://${outcome.location.bucket}/${outcome.location.key}`, archive, "--only-show-errors"], {
      env: { ...process.env, ...local.environment("streamer"), AWS_DEFAULT_REGION: "us-east-1" }
    })
    const restored = join(scratch, "resumed.img")
    execFileSync("zstd", ["-q", "-d", "-f", archive, "-o", restored])
    execFileSync("truncate", ["-s", String(snapshot.volumeBytes), image])
    assert.strictEqual(sha256OfFile(restored), sha256OfFile(image))
    assert.strictEqual(outcome.sourceDeleted, true)
    assert.isFalse(await snapshotExists(snapshot.snapshotId))
  }, 600_000)
})
