import { randomBytes } from "node:crypto"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { CreateTagsCommand, DescribeImagesCommand, DescribeSnapshotsCommand, RegisterImageCommand } from "@aws-sdk/client-ec2"
import { PutEventsCommand } from "@aws-sdk/client-eventbridge"
import { GetObjectCommand } from "@aws-sdk/client-s3"
import { Effect, Schema, type Layer, type Scope } from "effect"
import { Ec2, EventBridge, S3, awsCall } from "@backup-actions/aws"
import { ExportCompleted } from "@backup-actions/contracts"
import { ExportAction, SCHEDULES, type Policy } from "@backup-actions/config"
import { EMULATOR_ACCOUNT, EMULATOR_REGION } from "@backup-actions/local"
import { sendRecoveryPointEvent, waitForStep } from "./backup-events"
import { fireSchedule } from "./local-schedules"
import { seedAmi } from "./demo-seed"
import { putImageAsSnapshot } from "./snapshot-writer"
import { startLocalStack, type LocalStack } from "./stack"

const exportRule = (name: string, match: Policy["rules"][number]["match"], action: Schema.Schema.Encoded<typeof ExportAction>) => ({
  name,
  match,
  export: Schema.decodeUnknownSync(ExportAction)(action)
})

const policy: Policy = {
  rules: [
    exportRule("ami-direct", { resourceTypes: ["EC2"], vaults: ["ami-direct"] }, { mode: "direct" }),
    exportRule("ami-sweep", { resourceTypes: ["EC2"], tags: { team: "sweep" } }, { mode: "direct", olderThanDays: 0 }),
    exportRule("ami-native", { resourceTypes: ["EC2"] }, { mode: "native", storageClass: "GLACIER", deleteSourceAfterVerify: true })
  ]
}

let local: LocalStack
let scratch: string

const run = <A, E>(effect: Effect.Effect<A, E, Layer.Layer.Success<LocalStack["clients"]> | Scope.Scope>) =>
  Effect.runPromise(Effect.scoped(Effect.provide(effect, local.clients)))

const describeSnapshot = (snapshotId: string) =>
  Effect.flatMap(Ec2, (ec2) =>
    awsCall("ec2:DescribeSnapshots", (abortSignal) => ec2.send(new DescribeSnapshotsCommand({ SnapshotIds: [snapshotId] }), { abortSignal }))
  ).pipe(Effect.map((result) => result.Snapshots?.[0]))

const amiArn = (imageId: string): string => `arn:aws:ec2:${EMULATOR_REGION}::image/${imageId}`
const instanceArn = (instanceId: string): string => `arn:aws:ec2:${EMULATOR_REGION}:${EMULATOR_ACCOUNT}:instance/${instanceId}`

const sendAmi = (imageId: string, instanceId: string, vault: string) =>
  sendRecoveryPointEvent({ recoveryPointArn: amiArn(imageId), resourceArn: instanceArn(instanceId), resourceType: "EC2", vault })

const tag = (imageId: string, tags: Record<string, string>) =>
  Effect.flatMap(Ec2, (ec2) =>
    awsCall("ec2:CreateTags", (abortSignal) =>
      ec2.send(new CreateTagsCommand({ Resources: [imageId], Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })) }), { abortSignal })
    )
  )

const describeImage = (imageId: string) =>
  Effect.flatMap(Ec2, (ec2) => awsCall("ec2:DescribeImages", (abortSignal) => ec2.send(new DescribeImagesCommand({ ImageIds: [imageId] }), { abortSignal }))).pipe(
    Effect.map((described) => described.Images?.[0])
  )

const readJson = (bucket: string, key: string) =>
  Effect.flatMap(S3, (s3) => awsCall("s3:GetObject", (abortSignal) => s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }), { abortSignal }))).pipe(
    Effect.flatMap((object) => Effect.promise(() => object.Body?.transformToString() ?? Promise.resolve("null"))),
    Effect.map((text): unknown => JSON.parse(text))
  )

beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), "export-ami-test-"))
  local = await startLocalStack({ name: "export-ami-test", policy, services: ["exporter", "streamer"] })
})

afterAll(async () => {
  await local?.stop()
  rmSync(scratch, { recursive: true, force: true })
})

describe("the AMI export on the emulator", () => {
  let directImageId = ""

  it("writes a registered AMI's metadata and hands its snapshots to the streamer's direct mode, keeping the AMI", async () => {
    // Prepare: a snapshot with data, and an AMI registered over it
    const disk = join(scratch, "root.img")
    writeFileSync(disk, Buffer.concat([randomBytes(1024 * 1024), Buffer.alloc(1024 * 1024), randomBytes(512 * 1024)]))
    const { snapshotId } = await run(putImageAsSnapshot(disk, "ami root volume"))
    const registered = await run(
      Effect.flatMap(Ec2, (ec2) =>
        awsCall("ec2:RegisterImage", (abortSignal) =>
          ec2.send(
            new RegisterImageCommand({
              Name: "web-server",
              Architecture: "x86_64",
              RootDeviceName: "/dev/xvda",
              VirtualizationType: "hvm",
              EnaSupport: true,
              BootMode: "uefi",
              BlockDeviceMappings: [{ DeviceName: "/dev/xvda", Ebs: { SnapshotId: snapshotId, VolumeType: "gp3" } }]
            }),
            { abortSignal }
          )
        )
      )
    )
    directImageId = registered.ImageId ?? ""
    await run(tag(directImageId, { team: "sweep", "backup-actions:managed": "true" }))
    const image = await run(describeImage(directImageId))
    // Act
    await run(sendAmi(directImageId, "i-0123456789abcdef0", "ami-direct"))
    const record = await run(waitForStep(local.stack.ledgerTable, amiArn(directImageId), "export:direct", "3 minutes"))
    // Assess: the outcome names the metadata and where each snapshot's archive goes
    assert.strictEqual(record["status"], "succeeded", String(record["reason"]))
    const outcome = record["outcome"]
    const snapshots = (image?.BlockDeviceMappings ?? []).map((mapping) => mapping.Ebs?.SnapshotId ?? "")
    assert.strictEqual(outcome.kind, "ami")
    assert.strictEqual(outcome.mode, "direct")
    assert.deepStrictEqual(outcome.location, { bucket: local.stack.artifactBucket, key: `archives/ami/${directImageId}/image.json` })
    assert.isAbove(snapshots.length, 0)
    assert.deepStrictEqual(
      outcome.snapshots.map((entry: { snapshotId: string; archive: { key: string } }) => [entry.snapshotId, entry.archive.key]),
      snapshots.map((id) => [id, `archives/ebs/${id}/direct/disk.img.zst`])
    )
    assert.isFalse(outcome.sourceDeleted)
    // Assess: the metadata is what EC2 reports, enough to register the image again
    const document = (await run(readJson(outcome.location.bucket, outcome.location.key))) as Record<string, unknown>
    assert.strictEqual(document["imageId"], directImageId)
    assert.deepStrictEqual(document["blockDeviceMappings"], JSON.parse(JSON.stringify(image?.BlockDeviceMappings)))
    assert.strictEqual(document["rootDeviceName"], image?.RootDeviceName)
    assert.strictEqual(document["bootMode"], image?.BootMode)
    assert.deepStrictEqual(document["tags"], { team: "sweep", "backup-actions:managed": "true" })
    assert.strictEqual((await run(describeImage(directImageId)))?.State, "available")
  })

  it("archives through the streamer's direct mode each snapshot that an AMI's direct export names, and keeps them", async () => {
    // Prepare: a snapshot with data (the emulator's RegisterImage points images at an empty
    // snapshot of its own, which has no EBS direct blocks, so the export is announced here
    // with a snapshot written through the EBS direct APIs)
    const disk = join(scratch, "data.img")
    writeFileSync(disk, Buffer.concat([randomBytes(512 * 1024), Buffer.alloc(1024 * 1024), randomBytes(512 * 1024)]))
    const { snapshotId, volumeBytes } = await run(putImageAsSnapshot(disk, "ami data volume"))
    const imageArn = amiArn("ami-0feedfacecafe0001")
    const detail = {
      schemaVersion: 1 as const,
      correlationId: imageArn,
      idempotencyKey: `${imageArn}#export:direct`,
      status: "exported" as const,
      kind: "ami" as const,
      mode: "direct" as const,
      imageId: "ami-0feedfacecafe0001",
      sourceDeleted: false,
      location: { bucket: local.stack.artifactBucket, key: "archives/ami/ami-0feedfacecafe0001/image.json" },
      snapshots: [{ snapshotId, deviceName: "/dev/xvdb", archive: { bucket: local.stack.artifactBucket, key: `archives/ebs/${snapshotId}/direct/disk.img.zst` } }]
    }
    // Act
    await run(
      Effect.gen(function* () {
        const events = yield* EventBridge
        const encoded = yield* ExportCompleted.encodeDetail(detail)
        yield* awsCall("events:PutEvents", (abortSignal) =>
          events.send(
            new PutEventsCommand({
              Entries: [{ EventBusName: local.stack.busName, Source: ExportCompleted.source, DetailType: ExportCompleted.detailType, Detail: JSON.stringify(encoded) }]
            }),
            { abortSignal }
          )
        )
      })
    )
    const archived = await run(waitForStep(local.stack.ledgerTable, `arn:aws:ec2:${EMULATOR_REGION}::snapshot/${snapshotId}`, "archive:direct", "3 minutes"))
    // Assess
    assert.strictEqual(archived["status"], "succeeded", String(archived["reason"]))
    assert.deepStrictEqual(archived["outcome"].location, detail.snapshots[0]?.archive)
    assert.strictEqual(archived["outcome"].bytesRead, volumeBytes)
    assert.strictEqual(archived["outcome"].verified, "content")
    assert.isFalse(archived["outcome"].sourceDeleted)
    assert.strictEqual((await run(describeSnapshot(snapshotId)))?.State, "completed")
  })

  it("exports a managed AMI that no event announced on the daily sweep, and leaves the one the event exported alone", async () => {
    // Prepare
    const { imageId } = await run(seedAmi("swept"))
    await run(tag(imageId, { team: "sweep", "backup-actions:managed": "true" }))
    const before = await run(waitForStep(local.stack.ledgerTable, amiArn(directImageId), "export:direct"))
    const sweep = SCHEDULES.find((schedule) => schedule.name === "exporter-ami-sweep")
    assert.isDefined(sweep)
    // Act
    if (sweep !== undefined) await run(fireSchedule(local.stack, sweep))
    const record = await run(waitForStep(local.stack.ledgerTable, amiArn(imageId), "export:direct", "3 minutes"))
    // Assess: the swept AMI exported under the same ledger key an event would have used
    assert.strictEqual(record["status"], "succeeded", String(record["reason"]))
    assert.strictEqual(record["outcome"].imageId, imageId)
    const document = (await run(readJson(record["outcome"].location.bucket, record["outcome"].location.key))) as Record<string, unknown>
    assert.strictEqual(document["recoveryPointArn"], amiArn(imageId))
    // Assess: the AMI the event exported was not exported again
    const after = await run(waitForStep(local.stack.ledgerTable, amiArn(directImageId), "export:direct"))
    assert.strictEqual(after["attempts"], 1)
    assert.strictEqual(after["finishedAt"], before["finishedAt"])
  })

  it("fails with a clear reason for an AMI that does not exist, starting no store-image task and deleting nothing", async () => {
    // Prepare
    const missing = "ami-00000000000000000"
    // Act
    await run(sendAmi(missing, "i-0123456789abcdef0", "ami-native"))
    const record = await run(waitForStep(local.stack.ledgerTable, amiArn(missing), "export:native", "3 minutes"))
    // Assess
    assert.strictEqual(record["status"], "failed")
    assert.strictEqual(record["reason"], `AMI ${missing}: does not exist`)
    assert.strictEqual(record["outcome"].reason, record["reason"])
    assert.strictEqual(record["outcome"].kind, "ami")
    assert.isFalse(record["outcome"].sourceDeleted)
  })
})
