import { assert, describe, it } from "@effect/vitest"
import { EBSClient } from "@aws-sdk/client-ebs"
import { CreateRestoreImageTaskCommand, DeleteSnapshotCommand, DeregisterImageCommand, DescribeImagesCommand, EC2Client } from "@aws-sdk/client-ec2"
import { KMSClient } from "@aws-sdk/client-kms"
import { HeadObjectCommand, S3Client } from "@aws-sdk/client-s3"
import { mockClient } from "aws-sdk-client-mock"
import { Effect, Either, Fiber, Layer, TestClock } from "effect"
import { Ebs, Ec2, Kms, S3 } from "@backup-actions/aws"
import { Progress } from "../progress"
import { RESTORE_TASK_WAIT, defaultImageName, imageExportOf, registerImageInput, restoreImage, type ImageDocument } from "./image"

const STORED = { bucket: "artifacts", key: "recovery-points/123456789012/us-east-1/i-0123456789abcdef0/2026/11/30/ami-0abc123.bin" }

const mocked = () => {
  const clients = { s3: new S3Client({ region: "us-east-1" }), ec2: new EC2Client({ region: "us-east-1" }) }
  const s3 = mockClient(clients.s3)
  const ec2 = mockClient(clients.ec2)
  // In STANDARD: read at once, nothing to restore from cold storage
  s3.on(HeadObjectCommand).resolves({ ContentLength: 1024 })
  // A store-image object restores without EBS direct calls or KMS: their clients answer nothing
  const unused = { ebs: new EBSClient({ region: "us-east-1" }), kms: new KMSClient({ region: "us-east-1" }) }
  mockClient(unused.ebs)
  mockClient(unused.kms)
  const layer = Layer.mergeAll(Layer.succeed(S3, clients.s3), Layer.succeed(Ec2, clients.ec2), Layer.succeed(Ebs, unused.ebs), Layer.succeed(Kms, unused.kms), Progress.silent)
  return { s3, ec2, layer }
}

describe("restoring an AMI export", () => {
  it("tells a direct-mode image.json from a store-image object by its key, and refuses anything else", () => {
    assert.deepStrictEqual(imageExportOf({ bucket: "b", key: "archives/ami/ami-0abc123/image.json" }), Either.right({ _tag: "Direct" as const, location: { bucket: "b", key: "archives/ami/ami-0abc123/image.json" } }))
    assert.deepStrictEqual(imageExportOf(STORED), Either.right({ _tag: "Stored" as const, location: STORED, imageId: "ami-0abc123" }))
    assert.deepStrictEqual(imageExportOf({ bucket: "b", key: "ami-0abc123.bin" }), Either.right({ _tag: "Stored" as const, location: { bucket: "b", key: "ami-0abc123.bin" }, imageId: "ami-0abc123" }))
    const disk = imageExportOf({ bucket: "b", key: "archives/ebs/snap-1/direct/disk.img.zst" })
    assert.isTrue(Either.isLeft(disk))
    assert.match(Either.isLeft(disk) ? disk.left : "", /is not an AMI export: .* a disk image is restored with --to-snapshot$/)
  })

  it("registers the image with image.json's metadata, its mappings on the restored snapshots, and the original's own tags", () => {
    // Prepare: an encrypted root volume, a data volume, an empty encrypted volume and an instance store
    const document: ImageDocument = {
      kind: "backup-actions/ami-image",
      version: 1,
      imageId: "ami-0abc123",
      name: "web-server",
      architecture: "arm64",
      bootMode: "uefi",
      enaSupport: true,
      imdsSupport: "v2.0",
      tpmSupport: "v2.0",
      rootDeviceName: "/dev/xvda",
      virtualizationType: "hvm",
      blockDeviceMappings: [
        { DeviceName: "/dev/xvda", Ebs: { SnapshotId: "snap-root", VolumeSize: 8, VolumeType: "gp3", DeleteOnTermination: true, Iops: 3000, Throughput: 125, Encrypted: true } },
        { DeviceName: "/dev/xvdb", Ebs: { SnapshotId: "snap-data", VolumeSize: 100, VolumeType: "io2", Iops: 5000, DeleteOnTermination: false } },
        { DeviceName: "/dev/xvdc", Ebs: { VolumeSize: 20, VolumeType: "gp3", Encrypted: true } },
        { DeviceName: "/dev/xvdd", VirtualName: "ephemeral0" }
      ],
      tags: { team: "web", "aws:backup:source-resource": "arn:aws:ec2:us-east-1:123456789012:instance/i-1", "backup-actions:managed": "true" },
      snapshots: [
        { snapshotId: "snap-root", deviceName: "/dev/xvda", archive: "archives/ebs/snap-root/direct/disk.img.zst" },
        { snapshotId: "snap-data", deviceName: "/dev/xvdb", archive: "archives/ebs/snap-data/direct/disk.img.zst" }
      ]
    }
    // Act
    const input = registerImageInput(document, new Map([["snap-root", "snap-new-root"], ["snap-data", "snap-new-data"]]), "web-server-restored", "s3://b/archives/ami/ami-0abc123/image.json")
    // Assess
    assert.deepStrictEqual(input, {
      Name: "web-server-restored",
      Description: "restored from s3://b/archives/ami/ami-0abc123/image.json",
      Architecture: "arm64",
      RootDeviceName: "/dev/xvda",
      VirtualizationType: "hvm",
      EnaSupport: true,
      BootMode: "uefi",
      ImdsSupport: "v2.0",
      TpmSupport: "v2.0",
      BlockDeviceMappings: [
        { DeviceName: "/dev/xvda", Ebs: { SnapshotId: "snap-new-root", DeleteOnTermination: true, VolumeSize: 8, VolumeType: "gp3", Iops: 3000, Throughput: 125 } },
        { DeviceName: "/dev/xvdb", Ebs: { SnapshotId: "snap-new-data", DeleteOnTermination: false, VolumeSize: 100, VolumeType: "io2", Iops: 5000 } },
        { DeviceName: "/dev/xvdc", Ebs: { VolumeSize: 20, VolumeType: "gp3", Encrypted: true } },
        { DeviceName: "/dev/xvdd", VirtualName: "ephemeral0" }
      ],
      TagSpecifications: [
        {
          ResourceType: "image",
          Tags: [
            { Key: "team", Value: "web" },
            { Key: "backup-actions:restored-from", Value: "s3://b/archives/ami/ami-0abc123/image.json" }
          ]
        }
      ]
    })
  })

  it("names a restored image after the original with the time, within AMI names' 128 characters", () => {
    assert.strictEqual(defaultImageName("web-server", new Date("2026-12-01T18:30:05.123Z")), "web-server-restored-20261201T183005Z")
    assert.strictEqual(defaultImageName("x".repeat(200), new Date("2026-12-01T18:30:05.123Z")).length, 128)
  })

  it.effect("restores a store-image object with CreateRestoreImageTask and waits until the image is available", () =>
    Effect.gen(function* () {
      // Prepare: the image is pending twice, then available
      const { ec2, layer } = mocked()
      ec2.on(CreateRestoreImageTaskCommand).resolves({ ImageId: "ami-0new" })
      ec2
        .on(DescribeImagesCommand)
        .resolvesOnce({ Images: [] })
        .resolvesOnce({ Images: [{ ImageId: "ami-0new", State: "pending" }] })
        .resolves({ Images: [{ ImageId: "ami-0new", State: "available" }] })
      // Act
      const fiber = yield* Effect.fork(restoreImage(STORED, { name: "web-server-from-store" }).pipe(Effect.provide(layer)))
      yield* TestClock.adjust("1 minute")
      const restored = yield* Fiber.join(fiber)
      // Assess
      assert.deepStrictEqual(ec2.commandCalls(CreateRestoreImageTaskCommand)[0]?.args[0].input, {
        Bucket: "artifacts",
        ObjectKey: STORED.key,
        Name: "web-server-from-store",
        TagSpecifications: [
          { ResourceType: "image", Tags: [{ Key: "backup-actions:restored-from", Value: `s3://artifacts/${STORED.key}` }] },
          { ResourceType: "snapshot", Tags: [{ Key: "backup-actions:restored-from", Value: `s3://artifacts/${STORED.key}` }] }
        ]
      })
      assert.deepStrictEqual(restored, { imageId: "ami-0new", name: "web-server-from-store", snapshots: [], mode: "store-image" })
      assert.strictEqual(ec2.commandCalls(DescribeImagesCommand).length, 3)
    })
  )

  it.effect("deregisters a restored image that fails, deletes its snapshots, and says why", () =>
    Effect.gen(function* () {
      // Prepare
      const { ec2, layer } = mocked()
      ec2.on(CreateRestoreImageTaskCommand).resolves({ ImageId: "ami-0new" })
      const failed = {
        Images: [
          {
            ImageId: "ami-0new",
            State: "failed" as const,
            StateReason: { Code: "Client.InvalidObject", Message: "the object is not a stored AMI" },
            BlockDeviceMappings: [{ DeviceName: "/dev/xvda", Ebs: { SnapshotId: "snap-made" } }]
          }
        ]
      }
      ec2
        .on(DescribeImagesCommand)
        .resolvesOnce({ Images: [{ ImageId: "ami-0new", State: "pending" }] })
        .resolvesOnce(failed)
        .resolvesOnce(failed)
        .resolves({ Images: [{ ImageId: "ami-0new", State: "deregistered" }] })
      ec2.on(DeregisterImageCommand).resolves({})
      ec2.on(DeleteSnapshotCommand).resolves({})
      // Act
      const fiber = yield* Effect.fork(Effect.flip(restoreImage(STORED).pipe(Effect.provide(layer))))
      yield* TestClock.adjust("1 minute")
      const error = yield* Fiber.join(fiber)
      // Assess
      assert.strictEqual(error._tag, "OperationFailed")
      assert.strictEqual(error._tag === "OperationFailed" ? error.message : "", "the new image ami-0new is failed: the object is not a stored AMI")
      assert.match(ec2.commandCalls(CreateRestoreImageTaskCommand)[0]?.args[0].input.Name ?? "", /^ami-0abc123-restored-\d{8}T\d{6}Z$/)
      assert.deepStrictEqual(ec2.commandCalls(DeregisterImageCommand).map((call) => call.args[0].input), [{ ImageId: "ami-0new" }])
      assert.deepStrictEqual(ec2.commandCalls(DeleteSnapshotCommand).map((call) => call.args[0].input), [{ SnapshotId: "snap-made" }])
    })
  )

  it.effect("gives up on an image still pending after the bounded wait", () =>
    Effect.gen(function* () {
      // Prepare
      const { ec2, layer } = mocked()
      ec2.on(CreateRestoreImageTaskCommand).resolves({ ImageId: "ami-0new" })
      ec2.on(DescribeImagesCommand).resolves({ Images: [{ ImageId: "ami-0new", State: "pending" }] })
      ec2.on(DeregisterImageCommand).resolves({})
      // Act
      const fiber = yield* Effect.fork(Effect.flip(restoreImage(STORED).pipe(Effect.provide(layer))))
      yield* TestClock.adjust("5 hours")
      const error = yield* Fiber.join(fiber)
      // Assess
      assert.strictEqual(error._tag, "OperationFailed")
      assert.match(error._tag === "OperationFailed" ? error.message : "", /^the new image ami-0new is still pending after 4h/)
      assert.strictEqual(ec2.commandCalls(DescribeImagesCommand).filter((call) => call.args[0].input.ImageIds?.[0] === "ami-0new").length, RESTORE_TASK_WAIT.times + 1 + 2)
      assert.strictEqual(ec2.commandCalls(DeregisterImageCommand).length, 1)
    })
  )
})
