import { randomBytes } from "node:crypto"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { DescribeImagesCommand, DescribeSnapshotsCommand } from "@aws-sdk/client-ec2"
import { PutEventsCommand } from "@aws-sdk/client-eventbridge"
import { PutObjectCommand } from "@aws-sdk/client-s3"
import { Effect, type Layer, type Scope } from "effect"
import { Ec2, EventBridge, S3, awsCall } from "@backup-actions/aws"
import { ExportCompleted } from "@backup-actions/contracts"
import type { Policy } from "@backup-actions/config"
import { EMULATOR_REGION } from "@backup-actions/local"
import { runCli } from "./cli-process"
import { waitForStep } from "./backup-events"
import { EBS_BLOCK, putBlocksAsSnapshot, snapshotBlockDigests } from "./snapshot-blocks"
import { startLocalStack, type LocalStack } from "./stack"

const IMAGE_ID = "ami-0feedfacecafe0042"

/** The streamer archives what an AMI's direct export names; it reads no rules. */
const policy: Policy = { rules: [] }

let local: LocalStack
let scratch: string
let stackFile: string
/** The AMI's two snapshots: the root volume, and a data volume with a block written with zeros. */
let root: string
let data: string

const run = <A, E>(effect: Effect.Effect<A, E, Layer.Layer.Success<LocalStack["clients"]> | Scope.Scope>) =>
  Effect.runPromise(Effect.scoped(Effect.provide(effect, local.clients)))
const cli = (...args: ReadonlyArray<string>) => runCli(stackFile, ...args)
const bucket = () => local.stack.artifactBucket
const archiveKey = (snapshotId: string) => `archives/ebs/${snapshotId}/direct/disk.img.zst`

const writeSnapshot = (blocks: ReadonlyMap<number, Buffer>) => putBlocksAsSnapshot(blocks, "restore-image source")

const allSnapshots = Effect.flatMap(Ec2, (ec2) => awsCall("ec2:DescribeSnapshots", (abortSignal) => ec2.send(new DescribeSnapshotsCommand({ OwnerIds: ["self"] }), { abortSignal }))).pipe(
  Effect.map((described) => (described.Snapshots ?? []).map((snapshot) => snapshot.SnapshotId ?? "").sort())
)

const imagesNamed = (name: string) =>
  Effect.flatMap(Ec2, (ec2) =>
    awsCall("ec2:DescribeImages", (abortSignal) => ec2.send(new DescribeImagesCommand({ Owners: ["self"], Filters: [{ Name: "name", Values: [name] }] }), { abortSignal }))
  ).pipe(Effect.map((described) => described.Images ?? []))

const putJson = (key: string, document: unknown) =>
  Effect.flatMap(S3, (s3) =>
    awsCall("s3:PutObject", (abortSignal) => s3.send(new PutObjectCommand({ Bucket: bucket(), Key: key, Body: JSON.stringify(document), ContentType: "application/json" }), { abortSignal }))
  )

/** image.json as the exporter's direct mode writes it (apps/exporter/src/ami-direct.ts). */
const imageDocument = (snapshots: ReadonlyArray<{ readonly snapshotId: string; readonly deviceName: string; readonly archive: string }>) => ({
  kind: "backup-actions/ami-image",
  version: 1,
  recoveryPointArn: `arn:aws:ec2:${EMULATOR_REGION}::image/${IMAGE_ID}`,
  imageId: IMAGE_ID,
  name: "web-server",
  architecture: "x86_64",
  bootMode: "uefi",
  enaSupport: true,
  rootDeviceName: "/dev/xvda",
  rootDeviceType: "ebs",
  virtualizationType: "hvm",
  blockDeviceMappings: snapshots.map((snapshot) => ({ DeviceName: snapshot.deviceName, Ebs: { SnapshotId: snapshot.snapshotId, VolumeSize: 1, VolumeType: "gp3", DeleteOnTermination: true } })),
  tags: { team: "web", "backup-actions:managed": "true" },
  snapshots
})

beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), "restore-image-test-"))
  local = await startLocalStack({ name: "restore-image-test", policy, services: ["streamer"] })
  stackFile = join(scratch, "stack.json")
  writeFileSync(stackFile, JSON.stringify({ endpoint: local.emulator.endpoint, ...local.stack }, null, 2))
  // The AMI's snapshots, archived by the streamer as an AMI's direct export hands them over
  root = await run(writeSnapshot(new Map([[0, randomBytes(EBS_BLOCK)], [3, randomBytes(EBS_BLOCK)]])))
  data = await run(writeSnapshot(new Map([[0, randomBytes(EBS_BLOCK)], [2, Buffer.alloc(EBS_BLOCK)]])))
  const imageArn = `arn:aws:ec2:${EMULATOR_REGION}::image/${IMAGE_ID}`
  const detail = {
    schemaVersion: 1 as const,
    correlationId: imageArn,
    idempotencyKey: `${imageArn}#export:direct`,
    status: "exported" as const,
    kind: "ami" as const,
    mode: "direct" as const,
    imageId: IMAGE_ID,
    sourceDeleted: false,
    location: { bucket: bucket(), key: `archives/ami/${IMAGE_ID}/image.json` },
    snapshots: [root, data].map((snapshotId, index) => ({ snapshotId, deviceName: index === 0 ? "/dev/xvda" : "/dev/xvdb", archive: { bucket: bucket(), key: archiveKey(snapshotId) } }))
  }
  await run(
    Effect.gen(function* () {
      const events = yield* EventBridge
      const encoded = yield* ExportCompleted.encodeDetail(detail)
      yield* awsCall("events:PutEvents", (abortSignal) =>
        events.send(
          new PutEventsCommand({ Entries: [{ EventBusName: local.stack.busName, Source: ExportCompleted.source, DetailType: ExportCompleted.detailType, Detail: JSON.stringify(encoded) }] }),
          { abortSignal }
        )
      )
    })
  )
  for (const snapshotId of [root, data]) {
    const archived = await run(waitForStep(local.stack.ledgerTable, `arn:aws:ec2:${EMULATOR_REGION}::snapshot/${snapshotId}`, "archive:direct", "5 minutes"))
    assert.strictEqual(archived["status"], "succeeded", String(archived["reason"]))
  }
  await run(
    putJson(
      `archives/ami/${IMAGE_ID}/image.json`,
      imageDocument([
        { snapshotId: root, deviceName: "/dev/xvda", archive: archiveKey(root) },
        { snapshotId: data, deviceName: "/dev/xvdb", archive: archiveKey(data) }
      ])
    )
  )
}, 300_000)

afterAll(async () => {
  await local?.stop()
  if (scratch !== undefined) rmSync(scratch, { recursive: true, force: true })
})

describe("restore --to-image on the emulator", () => {
  it("registers a new AMI over snapshots restored from a direct-mode export's archives, each equal to its source", async () => {
    // Act
    const restored = await cli("restore", `s3://${bucket()}/archives/ami/${IMAGE_ID}/image.json`, "--to-image", "--image-name", "web-server-restored")
    // Assess: the new AMI
    assert.strictEqual(restored.status, 0, restored.stderr)
    const imageId = restored.stdout.trim()
    assert.match(imageId, /^ami-[0-9a-f]+$/)
    const images = await run(imagesNamed("web-server-restored"))
    assert.deepStrictEqual(
      images.map((image) => [image.ImageId, image.State]),
      [[imageId, "available"]]
    )
    // Assess: each snapshot restored from its archive, blocks written with zeros included
    const made = [...restored.stderr.matchAll(/(snap-[0-9a-f]+) at (\/dev\/xvd[ab]) from (snap-[0-9a-f]+)/g)].map((match) => ({ restored: match[1] ?? "", device: match[2], source: match[3] }))
    assert.deepStrictEqual(
      made.map((entry) => [entry.device, entry.source]),
      [
        ["/dev/xvda", root],
        ["/dev/xvdb", data]
      ]
    )
    for (const entry of made) {
      const [copy, original] = await run(Effect.all([snapshotBlockDigests(entry.restored), snapshotBlockDigests(entry.source ?? "")]))
      assert.deepStrictEqual(copy, original, entry.device)
    }
    assert.deepStrictEqual((await run(snapshotBlockDigests(made[1]?.restored ?? ""))).map(([index]) => index), [0, 2])
  })

  it("fails on an export one of whose archives is gone, leaving no AMI and no snapshot behind", async () => {
    // Prepare: the second snapshot's archive is missing
    const key = "archives/ami/ami-0feedfacecafe0043/image.json"
    const gone = "snap-0000000000000gone"
    const document = {
      ...imageDocument([
        { snapshotId: root, deviceName: "/dev/xvda", archive: archiveKey(root) },
        { snapshotId: gone, deviceName: "/dev/xvdb", archive: archiveKey(gone) }
      ]),
      imageId: "ami-0feedfacecafe0043"
    }
    await run(putJson(key, document))
    const before = await run(allSnapshots)
    // Act
    const restored = await cli("restore", `s3://${bucket()}/${key}`, "--to-image", "--image-name", "never-registered")
    // Assess
    assert.strictEqual(restored.status, 1)
    assert.match(restored.stderr, /the manifest s3:\/\/\S+\/archives\/ebs\/snap-0000000000000gone\/direct\/manifest\.ndjson does not exist/)
    assert.strictEqual(restored.stdout, "")
    assert.deepStrictEqual(await run(allSnapshots), before)
    assert.deepStrictEqual(await run(imagesNamed("never-registered")), [])
  })

  it("refuses an object that is no AMI export with a usage error", async () => {
    // Act
    const refused = await cli("restore", `s3://${bucket()}/${archiveKey(root)}`, "--to-image")
    // Assess
    assert.strictEqual(refused.status, 2)
    assert.include(refused.stderr, "is not an AMI export")
    assert.include(refused.stderr, "a disk image is restored with --to-snapshot")
  })
})
