import { createHash, randomBytes } from "node:crypto"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { CreateImageCommand, CreateTagsCommand, DescribeImagesCommand, DescribeSnapshotsCommand, RunInstancesCommand, type Image } from "@aws-sdk/client-ec2"
import {
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand
} from "@aws-sdk/client-s3"
import { Effect, Layer } from "effect"
import { Ec2, S3, awsCall } from "@backup-actions/aws"
import { ServiceSettings } from "@backup-actions/config"
import { EMULATOR_CREDENTIALS, EMULATOR_REGION, LocalRecoveryPoints, emulatorAwsConfig, emulatorClients, startEmulator, type Emulator } from "@backup-actions/local"
import { makeMemoryLedger } from "@backup-actions/ledger/testing"
import { archiveStoredImage } from "./ami-store"
import { deleteExportedSource } from "./source-deletion"
import { subjectFor } from "./test-subjects"

// The emulator has no CreateStoreImageTask: each test puts the object where the task would
// have put it (`<ami-id>.bin` at the top of the bucket) and runs everything that follows.
let emulator: Emulator
beforeAll(async () => {
  emulator = await startEmulator({ name: "exporter-ami-archive-test" })
})
afterAll(async () => {
  await emulator.stop()
})

const BUCKET = "ami-exports"
const MIB = 1024 * 1024

const layer = () => {
  const clients = Layer.merge(emulatorClients(emulator.endpoint), emulatorAwsConfig(emulator.endpoint))
  return Layer.mergeAll(
    clients,
    Layer.provide(LocalRecoveryPoints, clients),
    makeMemoryLedger().layer,
    ServiceSettings.layer({ busName: "bus", artifactBucket: "artifacts", ledgerTable: "ledger", queueUrl: "q", deadLetterQueueUrl: "dlq", workDir: "/tmp" })
  )
}

const run = <A, E>(effect: Effect.Effect<A, E, Layer.Layer.Success<ReturnType<typeof layer>>>) => Effect.runPromise(Effect.provide(effect, layer()))

/** An AMI made with CreateImage from an instance, as AWS Backup makes one, and its description. */
const makeImage = (name: string) =>
  Effect.gen(function* () {
    const ec2 = yield* Ec2
    const s3 = yield* S3
    yield* awsCall("s3:CreateBucket", (abortSignal) => s3.send(new CreateBucketCommand({ Bucket: BUCKET }), { abortSignal })).pipe(
      Effect.catchIf((error) => error.kind === "conflict", () => Effect.void)
    )
    const base = yield* awsCall("ec2:DescribeImages", (abortSignal) => ec2.send(new DescribeImagesCommand({ Owners: ["amazon"] }), { abortSignal }))
    const instances = yield* awsCall("ec2:RunInstances", (abortSignal) =>
      ec2.send(new RunInstancesCommand({ ImageId: base.Images?.[0]?.ImageId, MinCount: 1, MaxCount: 1, InstanceType: "t3.micro" }), { abortSignal })
    )
    const instanceId = instances.Instances?.[0]?.InstanceId ?? ""
    const created = yield* awsCall("ec2:CreateImage", (abortSignal) => ec2.send(new CreateImageCommand({ InstanceId: instanceId, Name: name }), { abortSignal }))
    const imageId = created.ImageId ?? ""
    yield* awsCall("ec2:CreateTags", (abortSignal) =>
      ec2.send(new CreateTagsCommand({ Resources: [imageId], Tags: [{ Key: "backup-actions:instance-id", Value: instanceId }] }), { abortSignal })
    )
    const described = yield* awsCall("ec2:DescribeImages", (abortSignal) => ec2.send(new DescribeImagesCommand({ ImageIds: [imageId] }), { abortSignal }))
    const image: Image = described.Images?.[0] ?? {}
    return { image, imageId, instanceId, snapshotId: image.BlockDeviceMappings?.[0]?.Ebs?.SnapshotId ?? "" }
  })

const imageState = (imageId: string, snapshotId: string) =>
  Effect.gen(function* () {
    const ec2 = yield* Ec2
    const images = yield* awsCall("ec2:DescribeImages", (abortSignal) => ec2.send(new DescribeImagesCommand({ Owners: ["self"] }), { abortSignal }))
    const snapshots = yield* awsCall("ec2:DescribeSnapshots", (abortSignal) => ec2.send(new DescribeSnapshotsCommand({ OwnerIds: ["self"] }), { abortSignal }))
    return {
      imageKept: (images.Images ?? []).some((image) => image.ImageId === imageId),
      snapshotKept: (snapshots.Snapshots ?? []).some((snapshot) => snapshot.SnapshotId === snapshotId)
    }
  })

const keysUnder = (prefix: string) =>
  Effect.flatMap(S3, (s3) => awsCall("s3:ListObjectsV2", (abortSignal) => s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix }), { abortSignal }))).pipe(
    Effect.map((listed) => (listed.Contents ?? []).map((object) => object.Key))
  )

const subject = (imageId: string, action: { readonly storageClass: "GLACIER_IR" | "GLACIER" | "DEEP_ARCHIVE"; readonly deleteSourceAfterVerify: boolean }, vault: string) => ({
  ...subjectFor({ recoveryPointArn: `arn:aws:ec2:${EMULATOR_REGION}::image/${imageId}`, resourceType: "EC2", action: { mode: "native", bucket: BUCKET, ...action } }),
  backupVaultName: vault,
  resourceArn: ""
})

/**
 * Writes the object in parts with a full-object CRC32, as S3 keeps a default full-object CRC
 * for an upload that names none. (The emulator keeps no checksum at all for such an upload,
 * so the algorithm is named here.)
 */
const putInPartsWithFullObjectCrc = async (key: string, bytes: Buffer, partSize: number): Promise<void> => {
  const bare = new S3Client({ region: EMULATOR_REGION, endpoint: emulator.endpoint, credentials: EMULATOR_CREDENTIALS, forcePathStyle: true, requestChecksumCalculation: "WHEN_REQUIRED" })
  const { UploadId } = await bare.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: key, ChecksumAlgorithm: "CRC32", ChecksumType: "FULL_OBJECT" }))
  const parts = []
  for (let start = 0, part = 1; start < bytes.length; start += partSize, part += 1) {
    const uploaded = await bare.send(new UploadPartCommand({ Bucket: BUCKET, Key: key, UploadId, PartNumber: part, Body: bytes.subarray(start, start + partSize) }))
    parts.push({ PartNumber: part, ETag: uploaded.ETag })
  }
  await bare.send(new CompleteMultipartUploadCommand({ Bucket: BUCKET, Key: key, UploadId, MultipartUpload: { Parts: parts } }))
  bare.destroy()
}

const dayPath = (image: Image): string => (image.CreationDate ?? "").slice(0, 10).split("-").join("/")

describe("moving a stored AMI image into Glacier on the emulator", () => {
  it("moves an object put where the store-image task would have put it into the dated layout in DEEP_ARCHIVE, verifies it, and once that is recorded deletes the AMI and its snapshots", async () => {
    // Prepare
    const { image, imageId, instanceId, snapshotId } = await run(makeImage("deep"))
    const bytes = randomBytes(3 * MIB)
    await run(Effect.flatMap(S3, (s3) => awsCall("s3:PutObject", (abortSignal) => s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: `${imageId}.bin`, Body: bytes }), { abortSignal }))))
    // Act
    const exported = subject(imageId, { storageClass: "DEEP_ARCHIVE", deleteSourceAfterVerify: true }, "ami-vault")
    const result = await run(archiveStoredImage(exported, image, `${imageId}.bin`))
    const keptWhileRecording = await run(imageState(imageId, snapshotId))
    const announced = await run(deleteExportedSource(exported, "ami", result.outcome))
    // Assess: the outcome names the copy in the layout, verified; the source deleted only after it
    const key = `recovery-points/${image.OwnerId}/${EMULATOR_REGION}/${instanceId}/${dayPath(image)}/${imageId}.bin`
    assert.strictEqual(result._tag, "Succeeded")
    assert.deepStrictEqual(result.outcome.location, { bucket: BUCKET, key })
    assert.strictEqual(result.outcome.storageClass, "DEEP_ARCHIVE")
    assert.strictEqual(result.outcome.bytesStored, bytes.length)
    assert.isTrue(result.outcome.verified)
    assert.deepStrictEqual(keptWhileRecording, { imageKept: true, snapshotKept: true })
    assert.isTrue(announced.sourceDeleted)
    assert.strictEqual(announced.sourceDeletion, "deleted")
    // Assess: what S3 holds, and what EC2 no longer does
    const stored = await run(Effect.flatMap(S3, (s3) => awsCall("s3:HeadObject", (abortSignal) => s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key }), { abortSignal }))))
    assert.strictEqual(stored.StorageClass, "DEEP_ARCHIVE")
    assert.strictEqual(stored.ContentLength, bytes.length)
    assert.deepStrictEqual(await run(keysUnder(`${imageId}.bin`)), [])
    assert.deepStrictEqual(await run(imageState(imageId, snapshotId)), { imageKept: false, snapshotKept: false })
  })

  it("copies a larger image part by part into GLACIER_IR with the bytes unchanged, keeping the AMI when the policy does not ask to delete it", async () => {
    // Prepare: a multipart object, as the task writes one, with S3's default full-object CRC
    const { image, imageId, snapshotId } = await run(makeImage("parts"))
    const bytes = randomBytes(11 * MIB)
    await putInPartsWithFullObjectCrc(`${imageId}.bin`, bytes, 6 * MIB)
    // Act
    const result = await run(
      archiveStoredImage(subject(imageId, { storageClass: "GLACIER_IR", deleteSourceAfterVerify: false }, ""), image, `${imageId}.bin`, { singleCopyLimit: 5 * MIB, partSize: 5 * MIB })
    )
    // Assess
    assert.strictEqual(result._tag, "Succeeded", String(result.outcome.reason))
    assert.isTrue(result.outcome.verified)
    assert.isFalse(result.outcome.sourceDeleted)
    const copied = await run(
      Effect.flatMap(S3, (s3) =>
        awsCall("s3:GetObject", (abortSignal) => s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: result.outcome.location?.key }), { abortSignal }))
      ).pipe(Effect.flatMap((object) => Effect.promise(() => object.Body?.transformToByteArray() ?? Promise.resolve(new Uint8Array()))))
    )
    assert.strictEqual(createHash("sha256").update(copied).digest("hex"), createHash("sha256").update(bytes).digest("hex"))
    assert.deepStrictEqual(await run(keysUnder(`${imageId}.bin`)), [])
    assert.deepStrictEqual(await run(imageState(imageId, snapshotId)), { imageKept: true, snapshotKept: true })
  })

  it("fails with the reason when the stored object has no checksum to verify against, copying nothing and keeping the object and the AMI", async () => {
    // Prepare: an object put without any checksum
    const { image, imageId, snapshotId } = await run(makeImage("unchecked"))
    const bare = new S3Client({ region: EMULATOR_REGION, endpoint: emulator.endpoint, credentials: EMULATOR_CREDENTIALS, forcePathStyle: true, requestChecksumCalculation: "WHEN_REQUIRED" })
    await bare.send(new PutObjectCommand({ Bucket: BUCKET, Key: `${imageId}.bin`, Body: randomBytes(MIB) }))
    bare.destroy()
    // Act
    const result = await run(archiveStoredImage(subject(imageId, { storageClass: "GLACIER", deleteSourceAfterVerify: true }, "ami-vault"), image, `${imageId}.bin`))
    // Assess
    assert.strictEqual(result._tag, "Failed")
    if (result._tag === "Failed") assert.strictEqual(result.reason, `${imageId}.bin has no full-object checksum in S3 to verify a copy against (none)`)
    assert.strictEqual(result.outcome.reason, `${imageId}.bin has no full-object checksum in S3 to verify a copy against (none)`)
    assert.isFalse(result.outcome.sourceDeleted)
    assert.deepStrictEqual(result.outcome.location, { bucket: BUCKET, key: `${imageId}.bin` })
    assert.deepStrictEqual(await run(keysUnder("recovery-points/")).then((keys) => keys.filter((key) => key?.endsWith(`${imageId}.bin`))), [])
    assert.deepStrictEqual(await run(keysUnder(`${imageId}.bin`)), [`${imageId}.bin`])
    assert.deepStrictEqual(await run(imageState(imageId, snapshotId)), { imageKept: true, snapshotKept: true })
  })
})
