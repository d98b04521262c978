import { assert, describe, it } from "@effect/vitest"
import { BackupClient, DeleteRecoveryPointCommand, DescribeRecoveryPointCommand, ResourceNotFoundException } from "@aws-sdk/client-backup"
import { CreateStoreImageTaskCommand, DeregisterImageCommand, DescribeImagesCommand, DescribeStoreImageTasksCommand, EC2Client, type Image } from "@aws-sdk/client-ec2"
import {
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  HeadObjectCommand,
  S3Client,
  S3ServiceException,
  UploadPartCopyCommand
} from "@aws-sdk/client-s3"
import { mockClient } from "aws-sdk-client-mock"
import { Effect, Fiber, Layer, TestClock } from "effect"
import { Backup, Ec2, RecoveryPoints, S3 } from "@backup-actions/aws"
import { ServiceSettings } from "@backup-actions/config"
import { makeMemoryLedger } from "@backup-actions/ledger/testing"
import { archiveStoredImage, awaitStoreTask, exportAmiToStore, startOrAdoptStoreTask } from "./ami-store"
import { describeExportFailure } from "./errors"
import { deleteExportedSource } from "./source-deletion"
import { subjectFor } from "./test-subjects"

// The emulator has no CreateStoreImageTask / DescribeStoreImageTasks, and a copy above 5 GiB
// is too large to run there: these requests are checked against mocked clients.
const IMAGE_ID = "ami-0123456789abcdef0"
const RECOVERY_POINT = `arn:aws:ec2:us-east-1::image/${IMAGE_ID}`
const GIB = 1024 ** 3

const image: Image = {
  ImageId: IMAGE_ID,
  State: "available",
  OwnerId: "111122223333",
  CreationDate: "2026-03-04T05:06:07.000Z",
  BlockDeviceMappings: [{ DeviceName: "/dev/xvda", Ebs: { SnapshotId: "snap-0aaaaaaaaaaaaaaaa" } }],
  Tags: [{ Key: "aws:backup:source-resource", Value: "i-0fedcba9876543210" }]
}

const setup = () => {
  const ec2 = new EC2Client({ region: "us-east-1" })
  const s3 = new S3Client({ region: "us-east-1" })
  const backup = new BackupClient({ region: "us-east-1" })
  const ec2Mock = mockClient(ec2)
  const s3Mock = mockClient(s3)
  const backupMock = mockClient(backup)
  ec2Mock.on(DescribeImagesCommand).resolves({ Images: [image] })
  backupMock.on(DeleteRecoveryPointCommand).resolves({})
  backupMock.on(DescribeRecoveryPointCommand).rejects(new ResourceNotFoundException({ message: "gone", $metadata: {} }))
  const layer = Layer.mergeAll(
    Layer.succeed(Ec2, ec2),
    Layer.succeed(S3, s3),
    Layer.provide(RecoveryPoints.Live, Layer.succeed(Backup, backup)),
    makeMemoryLedger().layer,
    ServiceSettings.layer({ busName: "bus", artifactBucket: "artifacts", ledgerTable: "ledger", queueUrl: "q", deadLetterQueueUrl: "dlq", workDir: "/tmp" })
  )
  return { ec2Mock, s3Mock, backupMock, layer }
}

const subject = (options: { readonly storageClass?: "GLACIER_IR" | "GLACIER" | "DEEP_ARCHIVE"; readonly deleteSourceAfterVerify?: boolean } = {}) => ({
  ...subjectFor({
    recoveryPointArn: RECOVERY_POINT,
    resourceType: "EC2",
    action: { mode: "native", bucket: "ami-exports", ...options }
  }),
  backupVaultName: "ami-vault",
  resourceArn: "arn:aws:ec2:us-east-1:111122223333:instance/i-0fedcba9876543210"
})

const refused = new S3ServiceException({
  name: "InvalidStorageClass",
  $fault: "client",
  $metadata: { httpStatusCode: 400 },
  message: "The storage class you specified is not valid"
})

describe("the AMI store-image export", () => {
  it.effect("starts a store-image task of the AMI into the export bucket and polls it on a growing schedule until it completes", () =>
    Effect.gen(function* () {
      // Prepare
      const { ec2Mock, layer } = setup()
      ec2Mock.on(CreateStoreImageTaskCommand).resolves({ ObjectKey: `${IMAGE_ID}.bin` })
      const running = { AmiId: IMAGE_ID, Bucket: "ami-exports", S3objectKey: `${IMAGE_ID}.bin`, StoreTaskState: "InProgress", ProgressPercentage: 40 }
      // No earlier task; the new one not listed yet, then running twice, then completed.
      ec2Mock
        .on(DescribeStoreImageTasksCommand)
        .resolvesOnce({ StoreImageTaskResults: [] })
        .resolvesOnce({ StoreImageTaskResults: [] })
        .resolvesOnce({ StoreImageTaskResults: [running] })
        .resolvesOnce({ StoreImageTaskResults: [running] })
        .resolves({ StoreImageTaskResults: [{ ...running, StoreTaskState: "Completed", ProgressPercentage: 100 }] })
      // Act
      const fiber = yield* Effect.fork(
        Effect.gen(function* () {
          const key = yield* startOrAdoptStoreTask(IMAGE_ID, "ami-exports", RECOVERY_POINT)
          const task = yield* awaitStoreTask(IMAGE_ID, "ami-exports")
          return { key, task }
        }).pipe(Effect.provide(layer))
      )
      yield* TestClock.adjust("1 hour")
      const { key, task } = yield* Fiber.join(fiber)
      // Assess
      assert.deepStrictEqual(
        ec2Mock.commandCalls(CreateStoreImageTaskCommand).map((call) => call.args[0].input),
        [{ ImageId: IMAGE_ID, Bucket: "ami-exports", S3ObjectTags: [{ Key: "backup-actions:recovery-point", Value: RECOVERY_POINT }] }]
      )
      assert.deepStrictEqual(
        ec2Mock.commandCalls(DescribeStoreImageTasksCommand).map((call) => call.args[0].input),
        Array.from({ length: 5 }, () => ({ ImageIds: [IMAGE_ID] }))
      )
      assert.strictEqual(key, `${IMAGE_ID}.bin`)
      assert.strictEqual(task?.StoreTaskState, "Completed")
    })
  )

  it.effect("carries on a running task an earlier attempt started instead of starting another", () =>
    Effect.gen(function* () {
      // Prepare
      const { ec2Mock, layer } = setup()
      ec2Mock.on(DescribeStoreImageTasksCommand).resolves({
        StoreImageTaskResults: [
          { AmiId: IMAGE_ID, Bucket: "other-bucket", S3objectKey: `${IMAGE_ID}.bin`, StoreTaskState: "Completed" },
          { AmiId: IMAGE_ID, Bucket: "ami-exports", S3objectKey: `${IMAGE_ID}.bin`, StoreTaskState: "InProgress" }
        ]
      })
      // Act
      const key = yield* startOrAdoptStoreTask(IMAGE_ID, "ami-exports", RECOVERY_POINT).pipe(Effect.provide(layer))
      // Assess
      assert.strictEqual(key, `${IMAGE_ID}.bin`)
      assert.strictEqual(ec2Mock.commandCalls(CreateStoreImageTaskCommand).length, 0)
    })
  )

  it.effect("ends with EC2's failure reason when the store-image task fails", () =>
    Effect.gen(function* () {
      // Prepare
      const { ec2Mock, layer } = setup()
      ec2Mock.on(DescribeStoreImageTasksCommand).resolves({
        StoreImageTaskResults: [
          { AmiId: IMAGE_ID, Bucket: "ami-exports", StoreTaskState: "Failed", StoreTaskFailureReason: "The AMI has a product code and cannot be stored" }
        ]
      })
      // Act
      const error = yield* Effect.flip(awaitStoreTask(IMAGE_ID, "ami-exports").pipe(Effect.provide(layer)))
      // Assess
      assert.strictEqual(error._tag, "NativeExportFailed")
      assert.strictEqual(describeExportFailure(error), `export store-image task of ${IMAGE_ID} ended Failed: The AMI has a product code and cannot be stored`)
    })
  )

  it.effect("fails with S3's reason when the storage class is refused, keeping the stored object and the AMI", () =>
    Effect.gen(function* () {
      // Prepare
      const { ec2Mock, s3Mock, backupMock, layer } = setup()
      ec2Mock.on(DescribeStoreImageTasksCommand).resolves({
        StoreImageTaskResults: [{ AmiId: IMAGE_ID, Bucket: "ami-exports", S3objectKey: `${IMAGE_ID}.bin`, StoreTaskState: "Completed" }]
      })
      s3Mock.on(HeadObjectCommand).resolves({ ContentLength: 4096, ChecksumCRC64NVME: "AAAAAAAAAAA=", ChecksumType: "FULL_OBJECT" })
      s3Mock.on(CopyObjectCommand).rejects(refused)
      // Act
      const error = yield* Effect.flip(exportAmiToStore(subject({ storageClass: "DEEP_ARCHIVE", deleteSourceAfterVerify: true })).pipe(Effect.provide(layer)))
      // Assess
      assert.strictEqual(error._tag, "StorageClassRefused")
      assert.strictEqual(
        describeExportFailure(error),
        "S3 refused storage class DEEP_ARCHIVE for recovery-points/111122223333/us-east-1/i-0fedcba9876543210/2026/03/04/ami-0123456789abcdef0.bin: The storage class you specified is not valid"
      )
      assert.strictEqual(ec2Mock.commandCalls(CreateStoreImageTaskCommand).length, 0)
      assert.strictEqual(s3Mock.commandCalls(DeleteObjectCommand).length, 0)
      assert.strictEqual(ec2Mock.commandCalls(DeregisterImageCommand).length, 0)
      assert.strictEqual(backupMock.commandCalls(DeleteRecoveryPointCommand).length, 0)
    })
  )

  it.effect("copies an image above 5 GiB part by part with the source's CRC, checked whole on completion, and once that is recorded the recovery point is deleted through AWS Backup", () =>
    Effect.gen(function* () {
      // Prepare
      const { ec2Mock, s3Mock, backupMock, layer } = setup()
      const bytes = 12 * GIB
      const target = "recovery-points/111122223333/us-east-1/i-0fedcba9876543210/2026/03/04/ami-0123456789abcdef0.bin"
      s3Mock.on(HeadObjectCommand, { Key: `${IMAGE_ID}.bin` }).resolves({ ContentLength: bytes, ChecksumCRC64NVME: "crc64nvme=", ChecksumType: "FULL_OBJECT" })
      s3Mock.on(HeadObjectCommand, { Key: target }).resolves({ ContentLength: bytes, ChecksumCRC64NVME: "crc64nvme=", ChecksumType: "FULL_OBJECT", StorageClass: "GLACIER_IR" })
      s3Mock.on(CreateMultipartUploadCommand).resolves({ UploadId: "upload-1" })
      s3Mock.on(UploadPartCopyCommand).callsFake(async (input: { PartNumber: number }) => ({ CopyPartResult: { ETag: `"etag-${input.PartNumber}"`, ChecksumCRC64NVME: `part-${input.PartNumber}` } }))
      s3Mock.on(CompleteMultipartUploadCommand).resolves({})
      s3Mock.on(DeleteObjectCommand).resolves({})
      // Act
      const exported = subject({ storageClass: "GLACIER_IR", deleteSourceAfterVerify: true })
      const result = yield* archiveStoredImage(exported, image, `${IMAGE_ID}.bin`, { partSize: 5 * GIB }).pipe(Effect.provide(layer))
      const deletedDuringExport = backupMock.commandCalls(DeleteRecoveryPointCommand).length
      const announced = yield* deleteExportedSource(exported, "ami", result.outcome).pipe(Effect.provide(layer))
      // Assess: three parts of at most 5 GiB, the storage class and algorithm on the upload
      assert.deepStrictEqual(s3Mock.commandCalls(CreateMultipartUploadCommand)[0]?.args[0].input, {
        Bucket: "ami-exports",
        Key: target,
        StorageClass: "GLACIER_IR",
        ChecksumAlgorithm: "CRC64NVME",
        ChecksumType: "FULL_OBJECT"
      })
      const ranges = s3Mock.commandCalls(UploadPartCopyCommand).map((call) => [call.args[0].input.PartNumber, call.args[0].input.CopySourceRange, call.args[0].input.CopySource])
      assert.deepStrictEqual(ranges, [
        [1, `bytes=0-${5 * GIB - 1}`, `ami-exports/${IMAGE_ID}.bin`],
        [2, `bytes=${5 * GIB}-${10 * GIB - 1}`, `ami-exports/${IMAGE_ID}.bin`],
        [3, `bytes=${10 * GIB}-${12 * GIB - 1}`, `ami-exports/${IMAGE_ID}.bin`]
      ])
      assert.deepStrictEqual(s3Mock.commandCalls(CompleteMultipartUploadCommand)[0]?.args[0].input, {
        Bucket: "ami-exports",
        Key: target,
        UploadId: "upload-1",
        ChecksumType: "FULL_OBJECT",
        ChecksumCRC64NVME: "crc64nvme=",
        MultipartUpload: {
          Parts: [1, 2, 3].map((part) => ({ PartNumber: part, ETag: `"etag-${part}"`, ChecksumCRC64NVME: `part-${part}` }))
        }
      })
      // Assess: the intermediate object deleted, then the recovery point through Backup, not EC2
      assert.deepStrictEqual(
        s3Mock.commandCalls(DeleteObjectCommand).map((call) => call.args[0].input),
        [{ Bucket: "ami-exports", Key: `${IMAGE_ID}.bin` }]
      )
      assert.deepStrictEqual(
        backupMock.commandCalls(DeleteRecoveryPointCommand).map((call) => call.args[0].input),
        [{ BackupVaultName: "ami-vault", RecoveryPointArn: RECOVERY_POINT }]
      )
      assert.strictEqual(deletedDuringExport, 0)
      assert.strictEqual(ec2Mock.commandCalls(DeregisterImageCommand).length, 0)
      assert.strictEqual(result._tag, "Succeeded")
      assert.isTrue(result.outcome.verified)
      assert.isFalse(result.outcome.sourceDeleted)
      assert.isTrue(announced.sourceDeleted)
      assert.strictEqual(announced.sourceDeletion, "deleted")
      assert.deepStrictEqual(result.outcome.storedChecksum, { algorithm: "CRC64NVME", value: "crc64nvme=" })
      // Assess: the outcome names the AMI's instance, by which its newest export is found
      assert.strictEqual(announced.resourceArn, "arn:aws:ec2:us-east-1:111122223333:instance/i-0fedcba9876543210")
    })
  )
})
