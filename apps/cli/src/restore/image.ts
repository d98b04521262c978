import {
  CreateRestoreImageTaskCommand,
  DeleteSnapshotCommand,
  DescribeImagesCommand,
  RegisterImageCommand,
  type BlockDeviceMapping,
  type RegisterImageCommandInput,
  type Tag
} from "@aws-sdk/client-ec2"
import { GetObjectCommand, HeadObjectCommand } from "@aws-sdk/client-s3"
import { Clock, Console, Duration, Effect, Either, ParseResult, Schedule, Schema } from "effect"
import { Ec2, Kms, S3, awsCall, deleteImage } from "@backup-actions/aws"
import { ensureReadable } from "../cold-storage"
import { OperationFailed, UsageError } from "../errors"
import { s3Url, type S3Location } from "../s3-url"
import { restoreToSnapshot } from "./snapshot"
import { RESTORED_FROM_TAG } from "../restored-names"

/** The tag every restored image (and the snapshots a restore task makes) carries: where it came from. */


/** A block device mapping as DescribeImages returned it, written into image.json. */
const MappingDocument = Schema.Struct({
  DeviceName: Schema.optional(Schema.String),
  VirtualName: Schema.optional(Schema.String),
  NoDevice: Schema.optional(Schema.String),
  Ebs: Schema.optional(
    Schema.Struct({
      DeleteOnTermination: Schema.optional(Schema.Boolean),
      Iops: Schema.optional(Schema.Number),
      SnapshotId: Schema.optional(Schema.String),
      VolumeSize: Schema.optional(Schema.Number),
      VolumeType: Schema.optional(Schema.String),
      Throughput: Schema.optional(Schema.Number),
      Encrypted: Schema.optional(Schema.Boolean)
    })
  )
})

/** An AMI's image.json as the exporter's direct mode writes it (apps/exporter/src/ami-direct.ts). */
export const ImageDocument = Schema.Struct({
  kind: Schema.Literal("backup-actions/ami-image"),
  version: Schema.Literal(1),
  imageId: Schema.String,
  name: Schema.optional(Schema.String),
  description: Schema.optional(Schema.String),
  architecture: Schema.optional(Schema.String),
  bootMode: Schema.optional(Schema.String),
  enaSupport: Schema.optional(Schema.Boolean),
  sriovNetSupport: Schema.optional(Schema.String),
  imdsSupport: Schema.optional(Schema.String),
  tpmSupport: Schema.optional(Schema.String),
  rootDeviceName: Schema.optional(Schema.String),
  virtualizationType: Schema.optional(Schema.String),
  kernelId: Schema.optional(Schema.String),
  ramdiskId: Schema.optional(Schema.String),
  blockDeviceMappings: Schema.Array(MappingDocument),
  tags: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.String })),
  snapshots: Schema.Array(Schema.Struct({ snapshotId: Schema.String, deviceName: Schema.optional(Schema.String), archive: Schema.String }))
})
export type ImageDocument = typeof ImageDocument.Type

const decodeDocument = Schema.decodeUnknownEither(Schema.parseJson(ImageDocument))

/** What `restore --to-image` can restore, told by the object's key. */
export type ImageExport = { readonly _tag: "Direct"; readonly location: S3Location } | { readonly _tag: "Stored"; readonly location: S3Location; readonly imageId: string }

/** Direct mode's `image.json`, or a store-image task's `<ami-id>.bin` (where the exporter moved it, or where EC2 put it). */
export const imageExportOf = (location: S3Location): Either.Either<ImageExport, string> => {
  const name = location.key.slice(location.key.lastIndexOf("/") + 1)
  if (name === "image.json") return Either.right({ _tag: "Direct", location })
  const stored = /^(ami-[0-9a-f]+)\.bin$/.exec(name)
  if (stored !== null) return Either.right({ _tag: "Stored", location, imageId: stored[1] ?? "" })
  return Either.left(
    `${s3Url(location)} is not an AMI export: name its image.json (direct mode, archives/ami/<ami-id>/image.json) or its store-image object (<ami-id>.bin)` +
      (name.startsWith("disk.img") ? "; a disk image is restored with --to-snapshot" : "")
  )
}

/** A name for the new AMI when none is given: the original's, marked restored with the time (AMI names are unique per region). */
export const defaultImageName = (original: string, now: Date): string => {
  const stamp = now.toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z")
  const suffix = `-restored-${stamp}`
  return `${original.slice(0, 128 - suffix.length)}${suffix}`
}

/** The original's tags a restored AMI keeps: not AWS's own, and not this project's (a managed tag would have the sweep export it again). */
const keptTags = (document: ImageDocument, restoredFrom: string): Array<Tag> => [
  ...Object.entries(document.tags ?? {})
    .filter(([key]) => !key.startsWith("aws:") && !key.startsWith("backup-actions:"))
    .map(([Key, Value]) => ({ Key, Value })),
  { Key: RESTORED_FROM_TAG, Value: restoredFrom }
]

/**
 * A mapping of the original AMI pointed at the restored snapshot. RegisterImage refuses
 * `Encrypted` (and `KmsKeyId`) on a mapping from a snapshot: the snapshot's encryption is the
 * volume's. A mapping without a snapshot (an empty volume, an instance store, a suppressed
 * device) is kept as it was.
 */
const restoredMapping = (mapping: typeof MappingDocument.Type, restored: ReadonlyMap<string, string>): BlockDeviceMapping => {
  const ebs = mapping.Ebs
  const snapshotId = ebs?.SnapshotId === undefined ? undefined : restored.get(ebs.SnapshotId)
  return {
    ...(mapping.DeviceName === undefined ? {} : { DeviceName: mapping.DeviceName }),
    ...(mapping.VirtualName === undefined ? {} : { VirtualName: mapping.VirtualName }),
    ...(mapping.NoDevice === undefined ? {} : { NoDevice: mapping.NoDevice }),
    ...(ebs === undefined
      ? {}
      : {
          Ebs: {
            ...(snapshotId === undefined ? {} : { SnapshotId: snapshotId }),
            ...(ebs.DeleteOnTermination === undefined ? {} : { DeleteOnTermination: ebs.DeleteOnTermination }),
            ...(ebs.VolumeSize === undefined ? {} : { VolumeSize: ebs.VolumeSize }),
            ...(ebs.VolumeType === undefined ? {} : { VolumeType: ebs.VolumeType as NonNullable<BlockDeviceMapping["Ebs"]>["VolumeType"] }),
            ...(ebs.Iops === undefined ? {} : { Iops: ebs.Iops }),
            ...(ebs.Throughput === undefined ? {} : { Throughput: ebs.Throughput }),
            ...(ebs.SnapshotId === undefined && ebs.Encrypted !== undefined ? { Encrypted: ebs.Encrypted } : {})
          }
        })
  }
}

/** RegisterImage's input: image.json's metadata, its mappings pointed at the restored snapshots. */
export const registerImageInput = (document: ImageDocument, restored: ReadonlyMap<string, string>, name: string, restoredFrom: string): RegisterImageCommandInput => ({
  Name: name,
  Description: document.description ?? `restored from ${restoredFrom}`,
  ...(document.architecture === undefined ? {} : { Architecture: document.architecture as RegisterImageCommandInput["Architecture"] }),
  ...(document.rootDeviceName === undefined ? {} : { RootDeviceName: document.rootDeviceName }),
  ...(document.virtualizationType === undefined ? {} : { VirtualizationType: document.virtualizationType }),
  ...(document.enaSupport === undefined ? {} : { EnaSupport: document.enaSupport }),
  ...(document.sriovNetSupport === undefined ? {} : { SriovNetSupport: document.sriovNetSupport }),
  ...(document.bootMode === undefined ? {} : { BootMode: document.bootMode as RegisterImageCommandInput["BootMode"] }),
  ...(document.imdsSupport === undefined ? {} : { ImdsSupport: document.imdsSupport as RegisterImageCommandInput["ImdsSupport"] }),
  ...(document.tpmSupport === undefined ? {} : { TpmSupport: document.tpmSupport as RegisterImageCommandInput["TpmSupport"] }),
  ...(document.kernelId === undefined ? {} : { KernelId: document.kernelId }),
  ...(document.ramdiskId === undefined ? {} : { RamdiskId: document.ramdiskId }),
  BlockDeviceMappings: document.blockDeviceMappings.map((mapping) => restoredMapping(mapping, restored)),
  TagSpecifications: [{ ResourceType: "image", Tags: keptTags(document, restoredFrom) }]
})

class ImagePending extends Schema.TaggedError<ImagePending>()("ImagePending", { state: Schema.String }) {}

/**
 * Waits until the image is available, polling every `every`, at most `times` polls; a failed
 * image ends with EC2's reason. An image EC2 does not list yet counts as pending.
 */
export const waitAvailable = (imageId: string, every: Duration.DurationInput, times: number) =>
  Effect.gen(function* () {
    const ec2 = yield* Ec2
    const described = yield* awsCall("ec2:DescribeImages", (abortSignal) => ec2.send(new DescribeImagesCommand({ ImageIds: [imageId] }), { abortSignal })).pipe(
      Effect.catchIf(
        (error) => error.kind === "not-found",
        () => Effect.succeed({ Images: [] })
      )
    )
    const image = described.Images?.find((candidate) => candidate.ImageId === imageId)
    const state = image?.State ?? "not listed yet"
    if (state === "available") return
    if (state === "pending" || state === "not listed yet") return yield* new ImagePending({ state })
    return yield* new OperationFailed({ message: `the new image ${imageId} is ${state}${image?.StateReason?.Message === undefined ? "" : `: ${image.StateReason.Message}`}` })
  }).pipe(
    Effect.retry({ schedule: Schedule.spaced(every), while: (error) => error._tag === "ImagePending", times }),
    Effect.catchTag("ImagePending", (error) =>
      Effect.fail(new OperationFailed({ message: `the new image ${imageId} is still ${error.state} after ${Duration.format(Duration.times(Duration.decode(every), times))}` }))
    )
  )

/** How long a registered image may take to become available (seconds on AWS), and a restore task's (its size's copy from S3). */
export const REGISTERED_WAIT = { every: Duration.seconds(5), times: 360 } as const
export const RESTORE_TASK_WAIT = { every: Duration.seconds(15), times: 960 } as const

/** What a restore to an image made. */
export interface RestoredImage {
  readonly imageId: string
  readonly name: string
  /** Direct mode: each original snapshot and the one restored from its archive. */
  readonly snapshots: ReadonlyArray<{ readonly source: string; readonly restored: string; readonly deviceName: string | undefined }>
  readonly mode: "direct" | "store-image"
}

const readDocument = (location: S3Location) =>
  Effect.gen(function* () {
    yield* ensureReadable(location)
    const s3 = yield* S3
    const text = yield* awsCall("s3:GetObject", async (abortSignal) => {
      const object = await s3.send(new GetObjectCommand({ Bucket: location.bucket, Key: location.key }), { abortSignal })
      return (await object.Body?.transformToString()) ?? ""
    }).pipe(
      Effect.catchIf(
        (error) => error.kind === "not-found",
        (error) => Effect.fail(new OperationFailed({ message: `${s3Url(location)} does not exist (${error.code})` }))
      )
    )
    const decoded = decodeDocument(text)
    if (Either.isLeft(decoded)) {
      return yield* new OperationFailed({ message: `${s3Url(location)} is not an AMI's image.json: ${ParseResult.TreeFormatter.formatErrorSync(decoded.left)}` })
    }
    return decoded.right
  })

const deleteSnapshots = (snapshotIds: ReadonlyArray<string>) =>
  Effect.flatMap(Ec2, (ec2) =>
    Effect.forEach(
      snapshotIds,
      (snapshotId) => awsCall("ec2:DeleteSnapshot", (abortSignal) => ec2.send(new DeleteSnapshotCommand({ SnapshotId: snapshotId }), { abortSignal })).pipe(Effect.ignore),
      { discard: true }
    )
  )

/**
 * Direct mode: each snapshot's archive restored with restoreToSnapshot (encrypted as its
 * source was), then RegisterImage with image.json's metadata over the new snapshots. On any
 * failure, the image registered is deregistered and every snapshot made is deleted.
 */
const restoreDirect = (location: S3Location, name: string | undefined) =>
  Effect.gen(function* () {
    const document = yield* readDocument(location)
    if (document.snapshots.length === 0) return yield* new OperationFailed({ message: `${s3Url(location)} names no snapshots to restore` })
    const unknown = document.blockDeviceMappings.flatMap((mapping) =>
      mapping.Ebs?.SnapshotId === undefined || document.snapshots.some((snapshot) => snapshot.snapshotId === mapping.Ebs?.SnapshotId) ? [] : [mapping.Ebs.SnapshotId]
    )
    if (unknown.length > 0) return yield* new OperationFailed({ message: `${s3Url(location)} maps ${unknown.join(", ")} but names no archive for it` })
    const made: Array<{ readonly source: string; readonly restored: string; readonly deviceName: string | undefined }> = []
    let imageId: string | undefined
    const work = Effect.gen(function* () {
      for (const snapshot of document.snapshots) {
        const restored = yield* restoreToSnapshot({ bucket: location.bucket, key: snapshot.archive })
        made.push({ source: snapshot.snapshotId, restored: restored.snapshotId, deviceName: snapshot.deviceName })
      }
      const ec2 = yield* Ec2
      const now = new Date(yield* Clock.currentTimeMillis)
      const imageName = name ?? defaultImageName(document.name ?? document.imageId, now)
      const input = registerImageInput(document, new Map(made.map((entry) => [entry.source, entry.restored])), imageName, s3Url(location))
      const registered = yield* awsCall("ec2:RegisterImage", (abortSignal) => ec2.send(new RegisterImageCommand(input), { abortSignal }))
      imageId = registered.ImageId
      if (imageId === undefined) return yield* new OperationFailed({ message: "RegisterImage answered no image id" })
      yield* waitAvailable(imageId, REGISTERED_WAIT.every, REGISTERED_WAIT.times)
      const result: RestoredImage = { imageId, name: imageName, snapshots: [...made], mode: "direct" }
      return result
    })
    return yield* work.pipe(
      Effect.onError(() =>
        Effect.gen(function* () {
          if (imageId !== undefined) yield* Effect.ignore(deleteImage(imageId))
          yield* deleteSnapshots(made.map((entry) => entry.restored))
        })
      )
    )
  })

/**
 * A store-image task's object: CreateRestoreImageTask (EC2 reads the object and makes the AMI
 * and its snapshots), then a bounded wait until the image is available. An image that fails or
 * does not become available is deregistered and its snapshots deleted.
 */
const restoreStored = (location: S3Location, imageIdOfObject: string, name: string | undefined) =>
  Effect.gen(function* () {
    yield* ensureReadable(location)
    const s3 = yield* S3
    yield* awsCall("s3:HeadObject", (abortSignal) => s3.send(new HeadObjectCommand({ Bucket: location.bucket, Key: location.key }), { abortSignal })).pipe(
      Effect.catchIf(
        (error) => error.kind === "not-found",
        (error) => Effect.fail(new OperationFailed({ message: `${s3Url(location)} does not exist (${error.code})` }))
      )
    )
    const ec2 = yield* Ec2
    const now = new Date(yield* Clock.currentTimeMillis)
    const imageName = name ?? defaultImageName(imageIdOfObject, now)
    const tags = [{ Key: RESTORED_FROM_TAG, Value: s3Url(location) }]
    const created = yield* awsCall("ec2:CreateRestoreImageTask", (abortSignal) =>
      ec2.send(
        new CreateRestoreImageTaskCommand({
          Bucket: location.bucket,
          ObjectKey: location.key,
          Name: imageName,
          TagSpecifications: [
            { ResourceType: "image", Tags: tags },
            { ResourceType: "snapshot", Tags: tags }
          ]
        }),
        { abortSignal }
      )
    )
    const imageId = created.ImageId
    if (imageId === undefined) return yield* new OperationFailed({ message: "CreateRestoreImageTask answered no image id" })
    yield* waitAvailable(imageId, RESTORE_TASK_WAIT.every, RESTORE_TASK_WAIT.times).pipe(Effect.onError(() => Effect.ignore(deleteImage(imageId))))
    const result: RestoredImage = { imageId, name: imageName, snapshots: [], mode: "store-image" }
    return result
  })

/** An AMI export restored as a new AMI, told apart by its key (see imageExportOf); prints nothing. */
export const restoreImage = (location: S3Location, options: { readonly name?: string | undefined } = {}) =>
  Effect.gen(function* () {
    const kind = imageExportOf(location)
    if (Either.isLeft(kind)) return yield* new UsageError({ message: kind.left, command: "restore" })
    return kind.right._tag === "Direct" ? yield* restoreDirect(location, options.name) : yield* restoreStored(location, kind.right.imageId, options.name)
  })

/** `restore --to-image [--image-name <name>]`: restoreImage, then the new AMI's id on stdout and what was done on stderr. */
export const restoreImageCommand = (location: S3Location, name: string | undefined) =>
  Effect.gen(function* () {
    const restored = yield* restoreImage(location, { name })
    const how =
      restored.mode === "direct"
        ? `registered over ${restored.snapshots.length} snapshots restored and read back (${restored.snapshots
            .map((snapshot) => `${snapshot.restored}${snapshot.deviceName === undefined ? "" : ` at ${snapshot.deviceName}`} from ${snapshot.source}`)
            .join(", ")})`
        : "restored by EC2 from its store-image object"
    yield* Console.error(`restored ${s3Url(location)} to ${restored.imageId} "${restored.name}": ${how}`)
    yield* Console.log(restored.imageId)
  }).pipe(Effect.provide(Kms.Live))
