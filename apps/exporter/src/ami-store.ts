import { CreateStoreImageTaskCommand, DescribeStoreImageTasksCommand, type Image, type StoreImageTaskResult } from "@aws-sdk/client-ec2"
import { HeadObjectCommand } from "@aws-sdk/client-s3"
import { Clock, Effect } from "effect"
import { Ec2, RecoveryPoints, S3, awsCall, deleteImage, findImage } from "@backup-actions/aws"
import { ServiceSettings } from "@backup-actions/config"
import { failed, succeeded, type StepResult } from "@backup-actions/ledger"
import { BACKUP_SOURCE_TAG, describeImage, instanceIdOf, tagsOf } from "./ami-image"
import { moveVerified, storedImageKey } from "./ami-archive"
import { parseAmiArn } from "./arns"
import { exportMonitorSchedule } from "./dynamodb-native"
import { ExportStillRunning, NativeExportFailed, NotExportable } from "./errors"
import { baseDetail, type ExportDetail, type ExportSubject } from "./outcome"

/** The tag put on the stored object (and kept by the copy): which recovery point it is. */
export const RECOVERY_POINT_OBJECT_TAG = "backup-actions:recovery-point"

/** How a store-image task is named in reasons: EC2 gives its tasks no identifier of their own. */
export const storeTaskName = (imageId: string): string => `store-image task of ${imageId}`

/** Copy tuning, for tests that exercise the multipart copy with small objects. */
export interface CopyLimits {
  readonly singleCopyLimit?: number
  readonly partSize?: number
}

/** The newest store-image task of the AMI into the bucket (EC2 lists the tasks of the last 31 days). */
const latestStoreTask = (imageId: string, bucket: string) =>
  Effect.gen(function* () {
    const ec2 = yield* Ec2
    const found = yield* awsCall("ec2:DescribeStoreImageTasks", (abortSignal) =>
      ec2.send(new DescribeStoreImageTasksCommand({ ImageIds: [imageId] }), { abortSignal })
    )
    const tasks = (found.StoreImageTaskResults ?? []).filter((task) => task.AmiId === imageId && task.Bucket === bucket)
    const started = (task: StoreImageTaskResult) => task.TaskStartTime?.getTime() ?? 0
    return tasks.sort((a, b) => started(b) - started(a))[0]
  })

/**
 * Waits until the task is Completed, polling on the export monitor's growing, jittered
 * schedule; Failed ends as NativeExportFailed with EC2's StoreTaskFailureReason. A task not
 * listed yet (just created) counts as still running.
 */
export const awaitStoreTask = (imageId: string, bucket: string) =>
  Effect.gen(function* () {
    const task = yield* latestStoreTask(imageId, bucket)
    const state = task?.StoreTaskState ?? "MISSING"
    if (state === "InProgress" || state === "MISSING") return yield* new ExportStillRunning({ exportId: storeTaskName(imageId), status: state })
    if (state !== "Completed") {
      return yield* new NativeExportFailed({ exportId: storeTaskName(imageId), status: state, cause: task?.StoreTaskFailureReason ?? "no failure reason given" })
    }
    return task
  }).pipe(Effect.retry({ schedule: exportMonitorSchedule, while: (error) => error._tag === "ExportStillRunning" }))

const objectExists = (bucket: string, key: string) =>
  Effect.flatMap(S3, (s3) => awsCall("s3:HeadObject", (abortSignal) => s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }), { abortSignal }))).pipe(
    Effect.as(true),
    Effect.catchIf(
      (error) => error.kind === "not-found",
      () => Effect.succeed(false)
    )
  )

/**
 * The key of the stored image: a task an earlier attempt started is carried on (running, or
 * completed with its object still there); otherwise a new task is started. EC2 names the
 * object `<ami-id>.bin` at the top of the bucket.
 */
export const startOrAdoptStoreTask = (imageId: string, bucket: string, recoveryPointArn: string) =>
  Effect.gen(function* () {
    const earlier = yield* latestStoreTask(imageId, bucket)
    const earlierKey = earlier?.S3objectKey ?? `${imageId}.bin`
    if (earlier?.StoreTaskState === "InProgress" || (earlier?.StoreTaskState === "Completed" && (yield* objectExists(bucket, earlierKey)))) {
      yield* Effect.logInfo(`carrying on the ${storeTaskName(imageId)} that an earlier attempt started (${earlier.StoreTaskState})`)
      return earlierKey
    }
    const ec2 = yield* Ec2
    const started = yield* awsCall("ec2:CreateStoreImageTask", (abortSignal) =>
      ec2.send(
        new CreateStoreImageTaskCommand({ ImageId: imageId, Bucket: bucket, S3ObjectTags: [{ Key: RECOVERY_POINT_OBJECT_TAG, Value: recoveryPointArn }] }),
        { abortSignal }
      )
    )
    yield* Effect.logInfo(`started the ${storeTaskName(imageId)} into ${bucket}`)
    return started.ObjectKey ?? `${imageId}.bin`
  })

/**
 * Deletes a verified AMI source and says what it left: an AWS Backup recovery point through
 * RecoveryPoints (AWS Backup deregisters the AMI and deletes its snapshots), an AMI of our own
 * by deregistering it and deleting its snapshots. An AMI that is already gone (a lost reply to
 * an earlier deletion) counts as deleted. An AMI that AWS Backup made but that came without its
 * vault (the sweep) is kept: only Backup may delete it.
 */
export const deleteAmiSource = (subject: Pick<ExportSubject, "recoveryPointArn" | "backupVaultName">) =>
  Effect.gen(function* () {
    if (subject.backupVaultName !== "") {
      const points = yield* RecoveryPoints
      return yield* points.delete({ recoveryPointArn: subject.recoveryPointArn, backupVaultName: subject.backupVaultName })
    }
    const ami = yield* amiOfRecoveryPoint(subject.recoveryPointArn)
    const image = yield* findImage(ami.imageId)
    if (image !== undefined && tagsOf(image)[BACKUP_SOURCE_TAG] !== undefined) {
      yield* Effect.logWarning(`${ami.imageId} was made by AWS Backup but its vault is not known here; it is kept`)
      return "still-there" as const
    }
    return yield* deleteImage(ami.imageId)
  })

/**
 * The AMI a recovery point names. Both AMI modes and the archiving after a store-image task
 * start here, so a recovery point of another kind is refused the same way in each.
 */
export const amiOfRecoveryPoint = (recoveryPointArn: string) => {
  const ami = parseAmiArn(recoveryPointArn)
  return ami === undefined
    ? Effect.fail(new NotExportable({ reason: `recovery point "${recoveryPointArn}" is not an AMI ARN (arn:aws:ec2:<region>::image/ami-...)` }))
    : Effect.succeed(ami)
}

/**
 * What follows the store-image task: the stored object moved into the dated layout and the
 * policy's storage class, verified. The AMI is deleted after the outcome is recorded, when the
 * policy asks (the step's `afterSuccess`).
 */
export const archiveStoredImage = (subject: ExportSubject, image: Image, objectKey: string, limits: CopyLimits = {}) =>
  Effect.gen(function* () {
    const settings = yield* ServiceSettings
    const ami = yield* amiOfRecoveryPoint(subject.recoveryPointArn)
    const created = new Date(image.CreationDate ?? subject.creationDate ?? "")
    if (Number.isNaN(created.getTime())) return yield* new NotExportable({ reason: `AMI ${ami.imageId} has no creation date to file it under` })
    const bucket = subject.plan.bucket ?? settings.artifactBucket
    const targetKey = storedImageKey({
      account: image.OwnerId ?? "unknown-account",
      region: ami.region,
      instanceId: instanceIdOf(image, subject.resourceArn),
      imageId: ami.imageId,
      creationDate: created
    })
    const moved = yield* moveVerified({ bucket, sourceKey: objectKey, targetKey, storageClass: subject.plan.storageClass, ...limits })
    const now = yield* Clock.currentTimeMillis
    const detail: ExportDetail = {
      ...baseDetail(subject, "ami"),
      status: moved.verified ? "exported" : "failed",
      imageId: ami.imageId,
      location: { bucket, key: moved.verified ? moved.key : objectKey },
      format: "store-image",
      bytesStored: moved.bytes,
      storageClass: moved.storageClass,
      ...(moved.checksum === undefined ? {} : { storedChecksum: moved.checksum }),
      verified: moved.verified,
      sourceDeleted: false,
      durationMs: now - subject.startedAt
    }
    const reason = moved.reason ?? `the copy at ${moved.key} did not verify`
    const result: StepResult<ExportDetail> = moved.verified ? succeeded(detail) : failed(reason, { ...detail, reason })
    return result
  })

/**
 * AMI native mode: CreateStoreImageTask of the AMI into the export bucket, monitored until it
 * completes, then the stored object moved into the archive layout and storage class (see
 * archiveStoredImage).
 */
export const exportAmiToStore = (subject: ExportSubject, limits: CopyLimits = {}) =>
  Effect.gen(function* () {
    const settings = yield* ServiceSettings
    const ami = yield* amiOfRecoveryPoint(subject.recoveryPointArn)
    const image = yield* describeImage(ami.imageId)
    const bucket = subject.plan.bucket ?? settings.artifactBucket
    const objectKey = yield* startOrAdoptStoreTask(ami.imageId, bucket, subject.recoveryPointArn)
    yield* awaitStoreTask(ami.imageId, bucket)
    return yield* archiveStoredImage(subject, image, objectKey, limits)
  })
