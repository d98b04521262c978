import { DescribeImagesCommand, type Image } from "@aws-sdk/client-ec2"
import { Effect } from "effect"
import { Ec2, awsCall } from "@backup-actions/aws"
import { ImageUnavailable } from "./errors"

/** The tag that marks an AMI as one this project manages, for the daily sweep. */
export const MANAGED_TAG = "backup-actions:managed"
/** A tag that names the instance an AMI was made from, when neither AWS Backup nor EC2 says. */
export const INSTANCE_TAG = "backup-actions:instance-id"
/** AWS Backup tags the AMIs it makes with the resource it backed up. */
export const BACKUP_SOURCE_TAG = "aws:backup:source-resource"

const INSTANCE_ID = /\bi-[0-9a-f]{8,17}\b/

/** An AMI's tags as a record. */
export const tagsOf = (image: Image): Record<string, string> =>
  Object.fromEntries((image.Tags ?? []).flatMap((tag) => (tag.Key === undefined ? [] : [[tag.Key, tag.Value ?? ""]])))

/**
 * The instance an AMI is of, for the archive's layout: our tag, AWS Backup's tag, the
 * recovery point's resource ARN (an instance ARN for EC2 backups), then EC2's
 * SourceInstanceId; "unknown-instance" when none says.
 */
export const instanceIdOf = (image: Image, resourceArn: string): string => {
  const tags = tagsOf(image)
  const candidates = [tags[INSTANCE_TAG], tags[BACKUP_SOURCE_TAG], resourceArn, image.SourceInstanceId]
  for (const candidate of candidates) {
    const found = candidate === undefined ? null : INSTANCE_ID.exec(candidate)
    if (found !== null) return found[0]
  }
  return "unknown-instance"
}

/** The AMI, which must exist and be available; anything else is an ImageUnavailable with the reason. */
export const describeImage = (imageId: string) =>
  Effect.gen(function* () {
    const ec2 = yield* Ec2
    const described = yield* awsCall("ec2:DescribeImages", (abortSignal) => ec2.send(new DescribeImagesCommand({ ImageIds: [imageId] }), { abortSignal })).pipe(
      Effect.catchIf(
        (error) => error.kind === "not-found",
        () => new ImageUnavailable({ imageId, reason: "does not exist" })
      )
    )
    const image = described.Images?.find((candidate) => candidate.ImageId === imageId)
    if (image === undefined) return yield* new ImageUnavailable({ imageId, reason: "does not exist" })
    if (image.State !== "available") return yield* new ImageUnavailable({ imageId, reason: `is ${image.State ?? "in no state"}, not available` })
    return image
  })
