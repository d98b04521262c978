import { DescribeImagesCommand, type Image } from "@aws-sdk/client-ec2"
import { Effect, Option } from "effect"
import { Ec2, awsCall, listVaultRecoveryPoints } from "@backup-actions/aws"
import { exportPlanFor, type ExportPlan, type Policy, type RecoveryPointFacts } from "@backup-actions/config"
import { BACKUP_SOURCE_TAG, MANAGED_TAG, instanceIdOf, tagsOf } from "./ami-image"
import { amiArn, parseAmiArn } from "./arns"

const DAY_MS = 86_400_000

/** An AMI the sweep exports, under the same ledger key as its recovery-point event would use. */
export interface SweptImage {
  readonly imageId: string
  readonly recoveryPointArn: string
  /** The instance's ARN when the AMI names its instance, else the AMI's own: what rules' resourceArnPattern tests. */
  readonly resourceArn: string
  readonly creationDate: string | undefined
  /** The vault AWS Backup keeps the AMI's recovery point in, when a rule limited to vaults asked and AWS Backup said; else empty. */
  readonly backupVaultName: string
  readonly plan: ExportPlan
}

/** What the sweep selects, and the AMIs it left out because only their vault could decide and AWS Backup did not say it. */
export interface SweepSelection {
  readonly selected: ReadonlyArray<SweptImage>
  readonly undecided: ReadonlyArray<string>
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
 * The export plan of an AMI whose vault is not known: the first export rule that matches it on
 * everything but the vault, unless that rule is limited to vaults (then only the vault could
 * decide, and the sweep does not guess it).
 */
const planWithoutVault = (policy: Policy, facts: Omit<RecoveryPointFacts, "vaultName">): ExportPlan | "depends-on-vault" | undefined => {
  for (const rule of policy.rules) {
    // Taking the rule's own first vault as the AMI's asks whether everything but the vault matches.
    const plan = rule.export === undefined ? undefined : exportPlanFor({ rules: [rule] }, { ...facts, vaultName: rule.match.vaults?.[0] ?? "" })
    if (plan !== undefined) return rule.match.vaults === undefined ? plan : "depends-on-vault"
  }
  return undefined
}

/**
 * The AMIs the sweep exports: available, matched by an export rule (resource type EC2, the
 * AMI's tags and, for rules limited to vaults, the vault that AWS Backup says holds its recovery
 * point), taken up by the rule (`sweepSelects`: tagged `backup-actions:managed=true`, or every
 * match) and old enough for it. `vaultOf` maps AMI ARNs to the vault that holds them, among the
 * vaults rules name (an AMI in none of them is in no vault a rule names); without it, an AMI
 * whose rule is limited to vaults is left out (`undecided`) rather than given another rule's plan.
 */
export const selectForSweep = (
  policy: Policy,
  images: ReadonlyArray<Image>,
  options: {
    readonly partition: string
    readonly region: string
    readonly account: string | undefined
    readonly nowMs: number
    readonly vaultOf?: Option.Option<ReadonlyMap<string, string>>
  }
): SweepSelection => {
  const selected: Array<SweptImage> = []
  const undecided: Array<string> = []
  const vaultOf = options.vaultOf ?? Option.none()
  for (const image of images) {
    const imageId = image.ImageId
    if (imageId === undefined || image.State !== "available") continue
    const tags = tagsOf(image)
    const recoveryPointArn = amiArn(options.partition, options.region, imageId)
    const instanceId = instanceIdOf(image, "")
    const account = image.OwnerId ?? options.account ?? ""
    const resourceArn = instanceId === "unknown-instance" ? recoveryPointArn : `arn:${options.partition}:ec2:${options.region}:${account}:instance/${instanceId}`
    const facts = { resourceType: "EC2", resourceArn, tags }
    // Only AWS Backup's own AMIs are recovery points in a vault: any other is in none, and rules
    // limited to vaults never match it, whatever AWS Backup's listing says or fails to say.
    const madeByBackup = tags[BACKUP_SOURCE_TAG] !== undefined
    const backupVaultName = madeByBackup ? Option.match(vaultOf, { onNone: () => "", onSome: (vaults) => vaults.get(recoveryPointArn) ?? "" }) : ""
    const plan =
      !madeByBackup || Option.isSome(vaultOf) ? exportPlanFor(policy, { ...facts, vaultName: backupVaultName }) : planWithoutVault(policy, facts)
    if (plan === "depends-on-vault") {
      undecided.push(imageId)
      continue
    }
    if (plan === undefined) continue
    if (plan.sweepSelects === "managed" && tags[MANAGED_TAG] !== "true") continue
    if (!oldEnough(image.CreationDate, plan.olderThanDays, options.nowMs)) continue
    selected.push({ imageId, recoveryPointArn, resourceArn, creationDate: image.CreationDate, backupVaultName, plan })
  }
  return { selected, undecided }
}

/** The vaults that export rules for AMIs are limited to: only then does the vault of an AMI matter to the sweep. */
export const amiVaultsNamedByRules = (policy: Policy): ReadonlyArray<string> => [
  ...new Set(
    policy.rules.flatMap((rule) =>
      rule.export === undefined || (rule.match.resourceTypes !== undefined && !rule.match.resourceTypes.includes("EC2")) ? [] : (rule.match.vaults ?? [])
    )
  )
]

/**
 * Which of the vaults holds each AMI, from AWS Backup's listing of each vault's EC2 recovery
 * points (the recovery point ARN of an EC2 backup is its AMI's ARN), every page, keyed by the AMI
 * ARN in the form the sweep builds. None when AWS Backup cannot answer: rules limited to vaults
 * then select nothing in this sweep, and a log line says so.
 */
export const vaultsOfAmis = (vaults: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const vaultOf: Map<string, string> = new Map()
    for (const vault of vaults) {
      for (const point of yield* listVaultRecoveryPoints(vault, { resourceType: "EC2" })) {
        const ami = parseAmiArn(point.RecoveryPointArn ?? "")
        if (ami !== undefined && !vaultOf.has(ami.arn)) vaultOf.set(ami.arn, vault)
      }
    }
    return Option.some<ReadonlyMap<string, string>>(vaultOf)
  }).pipe(
    Effect.catchTag("AwsError", (error) =>
      Effect.logWarning(
        `AMI sweep: AWS Backup could not list the EC2 recovery points of vault(s) ${vaults.join(", ")} (${error.operation}: ${error.code}: ${error.message}); rules limited to vaults select no AMI in this sweep`
      ).pipe(Effect.as(Option.none<ReadonlyMap<string, string>>()))
    )
  )

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
