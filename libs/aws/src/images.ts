import { DeleteSnapshotCommand, DeregisterImageCommand, DescribeImagesCommand, type Image } from "@aws-sdk/client-ec2"
import { Effect } from "effect"
import type { SourceDeletion } from "@backup-actions/contracts"
import { awsCall } from "./call"
import { Ec2 } from "./clients/ec2"
import type { AwsError } from "./errors"
import { undefinedWhenNotFound } from "./not-found"

/** The EBS snapshots behind an AMI, with the devices they back. */
export const snapshotsOf = (image: Image): ReadonlyArray<{ readonly snapshotId: string; readonly deviceName: string | undefined }> =>
  (image.BlockDeviceMappings ?? []).flatMap((mapping) =>
    mapping.Ebs?.SnapshotId === undefined ? [] : [{ snapshotId: mapping.Ebs.SnapshotId, deviceName: mapping.DeviceName }]
  )

/** The AMI as EC2 describes it, in whatever state, or undefined when EC2 no longer knows it. */
export const findImage = (imageId: string): Effect.Effect<Image | undefined, AwsError, Ec2> =>
  Effect.flatMap(Ec2, (ec2) =>
    undefinedWhenNotFound(awsCall("ec2:DescribeImages", (abortSignal) => ec2.send(new DescribeImagesCommand({ ImageIds: [imageId] }), { abortSignal })))
  ).pipe(Effect.map((described): Image | undefined => described?.Images?.find((candidate) => candidate.ImageId === imageId)))

/**
 * Deregisters an AMI, deletes its snapshots (DeregisterImage leaves them behind), then asks
 * EC2 again: gone or deregistered is "deleted". Idempotent: an image already gone is not an
 * error, so a retry after a lost reply says "deleted" too. Callers only do so after the
 * export was verified and recorded.
 */
export const deleteImage = (imageId: string): Effect.Effect<SourceDeletion, AwsError, Ec2> =>
  Effect.gen(function* () {
    const ec2 = yield* Ec2
    const image = yield* findImage(imageId)
    if (image !== undefined && image.State !== "deregistered") {
      yield* undefinedWhenNotFound(awsCall("ec2:DeregisterImage", (abortSignal) => ec2.send(new DeregisterImageCommand({ ImageId: imageId }), { abortSignal })))
    }
    yield* Effect.forEach(
      image === undefined ? [] : snapshotsOf(image),
      ({ snapshotId }) =>
        undefinedWhenNotFound(awsCall("ec2:DeleteSnapshot", (abortSignal) => ec2.send(new DeleteSnapshotCommand({ SnapshotId: snapshotId }), { abortSignal }))),
      { discard: true }
    )
    const after = yield* findImage(imageId)
    return after === undefined || after.State === "deregistered" ? "deleted" : "still-there"
  })
