import { DescribeImagesCommand, type Image } from "@aws-sdk/client-ec2"
import { Effect } from "effect"
import { Ec2, awsCall } from "@backup-actions/aws"
import { exportPlanFor, type ExportPlan, type Policy } from "@backup-actions/config"
import { MANAGED_TAG, instanceIdOf, tagsOf } from "./ami-image"
import { amiArn } from "./arns"

const DAY_MS = 86_400_000

/** An AMI the sweep exports, under the same ledger key as its recovery-point event would use. */
export interface SweptImage {
  readonly imageId: string
  readonly recoveryPointArn: string
  /** The instance's ARN when the AMI names its instance, else the AMI's own: what rules' resourceArnPattern tests. */
  readonly resourceArn: string
  readonly creationDate: string | undefined
  readonly plan: ExportPlan
}

/** Whether the AMI is at least `olderThanDays` old; an AMI without a creation date never is. */
export const oldEnough = (creationDate: string | undefined, olderThanDays: number, nowMs: number): boolean => {
  const created = Date.parse(creationDate ?? "")
  return Number.isFinite(created) && nowMs - created >= olderThanDays * DAY_MS
}

/**
 * Whether an AMI's recovery-point event leaves it to the sweep: it is younger than its rule's
 * olderThanDays. An event without a usable creation date is exported at once.
 */
export const leftToSweep = (plan: ExportPlan, creationDate: string | undefined, nowMs: number): boolean =>
  plan.olderThanDays > 0 && Number.isFinite(Date.parse(creationDate ?? "")) && !oldEnough(creationDate, plan.olderThanDays, nowMs)

/**
 * The AMIs the sweep exports: available, matched by an export rule (resource type EC2, the
 * AMI's tags; the vault is unknown outside an AWS Backup event, so rules that name vaults
 * match nothing here), taken up by the rule (`sweepSelects`: tagged
 * `backup-actions:managed=true`, or every match) and old enough for it.
 */
export const selectForSweep = (
  policy: Policy,
  images: ReadonlyArray<Image>,
  options: { readonly partition: string; readonly region: string; readonly account: string | undefined; readonly nowMs: number }
): ReadonlyArray<SweptImage> =>
  images.flatMap((image): ReadonlyArray<SweptImage> => {
    const imageId = image.ImageId
    if (imageId === undefined || image.State !== "available") return []
    const tags = tagsOf(image)
    const recoveryPointArn = amiArn(options.partition, options.region, imageId)
    const instanceId = instanceIdOf(image, "")
    const account = image.OwnerId ?? options.account ?? ""
    const resourceArn = instanceId === "unknown-instance" ? recoveryPointArn : `arn:${options.partition}:ec2:${options.region}:${account}:instance/${instanceId}`
    const plan = exportPlanFor(policy, { resourceType: "EC2", resourceArn, vaultName: "", tags })
    if (plan === undefined) return []
    if (plan.sweepSelects === "managed" && tags[MANAGED_TAG] !== "true") return []
    if (!oldEnough(image.CreationDate, plan.olderThanDays, options.nowMs)) return []
    return [{ imageId, recoveryPointArn, resourceArn, creationDate: image.CreationDate, plan }]
  })

/** The account's own available AMIs, page by page. */
export const listOwnImages = Effect.gen(function* () {
  const ec2 = yield* Ec2
  const images: Array<Image> = []
  let next: string | undefined
  do {
    const page = yield* awsCall("ec2:DescribeImages", (abortSignal) =>
      ec2.send(new DescribeImagesCommand({ Owners: ["self"], Filters: [{ Name: "state", Values: ["available"] }], MaxResults: 1000, NextToken: next }), { abortSignal })
    )
    images.push(...(page.Images ?? []))
    next = page.NextToken
  } while (next !== undefined)
  return images
})
