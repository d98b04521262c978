import type { Image } from "@aws-sdk/client-ec2"
import { Clock, Effect } from "effect"
import { snapshotsOf } from "@backup-actions/aws"
import { ServiceSettings } from "@backup-actions/config"
import { succeeded, type StepResult } from "@backup-actions/ledger"
import { describeImage, tagsOf } from "./ami-image"
import { amiOfRecoveryPoint } from "./ami-store"
import { ImageUnavailable } from "./errors"
import { baseDetail, type ExportDetail, type ExportSubject } from "./outcome"
import { putJson } from "./upload"

/** Where an AMI's metadata goes, beside the snapshot archives. */
export const imageDocumentKey = (imageId: string): string => `archives/ami/${imageId}/image.json`

/**
 * Where the streamer's direct mode archives a snapshot (apps/streamer/src/keys.ts, with its
 * default zstd compression). Restated here because no service imports another's code: the
 * streamer reads these keys from the event and must write exactly there.
 */
export const snapshotArchiveKey = (snapshotId: string): string => `archives/ebs/${snapshotId}/direct/disk.img.zst`

/**
 * Everything RegisterImage needs to bring the AMI back once its snapshots are restored from
 * their archives (the snapshot ids in the mappings are then replaced by the new ones).
 */
export const imageDocument = (image: Image, recoveryPointArn: string) => ({
  kind: "backup-actions/ami-image",
  version: 1,
  recoveryPointArn,
  imageId: image.ImageId,
  name: image.Name,
  description: image.Description,
  creationDate: image.CreationDate,
  ownerId: image.OwnerId,
  architecture: image.Architecture,
  bootMode: image.BootMode,
  enaSupport: image.EnaSupport,
  sriovNetSupport: image.SriovNetSupport,
  imdsSupport: image.ImdsSupport,
  tpmSupport: image.TpmSupport,
  rootDeviceName: image.RootDeviceName,
  rootDeviceType: image.RootDeviceType,
  virtualizationType: image.VirtualizationType,
  platformDetails: image.PlatformDetails,
  usageOperation: image.UsageOperation,
  kernelId: image.KernelId,
  ramdiskId: image.RamdiskId,
  blockDeviceMappings: image.BlockDeviceMappings ?? [],
  tags: tagsOf(image),
  snapshots: snapshotsOf(image).map((snapshot) => ({ ...snapshot, archive: snapshotArchiveKey(snapshot.snapshotId) }))
})

/**
 * AMI direct mode, for images beyond the store-image limits: the image's metadata written to
 * `archives/ami/<ami-id>/image.json`, and Export Completed naming each snapshot and the key
 * where the streamer, which reacts to that event, archives it through the EBS direct APIs.
 * Nothing is verified here (the streamer verifies each archive), so the AMI always stays.
 */
export const exportAmiDirect = (subject: ExportSubject) =>
  Effect.gen(function* () {
    const settings = yield* ServiceSettings
    const ami = yield* amiOfRecoveryPoint(subject.recoveryPointArn)
    const image = yield* describeImage(ami.imageId)
    const snapshots = snapshotsOf(image)
    if (snapshots.length === 0) return yield* new ImageUnavailable({ imageId: ami.imageId, reason: "has no EBS snapshots to archive (an instance-store AMI)" })
    // The streamer writes to the artifact bucket; the metadata goes beside its archives.
    const bucket = settings.artifactBucket
    const key = imageDocumentKey(ami.imageId)
    yield* putJson(bucket, key, imageDocument(image, subject.recoveryPointArn))
    const now = yield* Clock.currentTimeMillis
    const detail: ExportDetail = {
      ...baseDetail(subject, "ami"),
      status: "exported",
      imageId: ami.imageId,
      location: { bucket, key },
      format: "ebs-direct",
      snapshots: snapshots.map((snapshot) => ({
        snapshotId: snapshot.snapshotId,
        ...(snapshot.deviceName === undefined ? {} : { deviceName: snapshot.deviceName }),
        archive: { bucket, key: snapshotArchiveKey(snapshot.snapshotId) }
      })),
      verified: false,
      sourceDeleted: false,
      durationMs: now - subject.startedAt
    }
    const result: StepResult<ExportDetail> = succeeded(detail)
    return result
  })
