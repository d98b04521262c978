import { DescribeTagsCommand } from "@aws-sdk/client-ec2"
import { ListTagsForResourceCommand } from "@aws-sdk/client-rds"
import { Effect } from "effect"
import { awsCall } from "@backup-actions/aws"
import type { Policy } from "@backup-actions/config"
import type { RegionClients } from "./accounts"

/** Whether a replicate rule for this resource type matches on tags, so that they must be looked up first. */
export const replicateRulesNeedTags = (policy: Policy, resourceType: string): boolean =>
  policy.rules.some(
    (rule) =>
      rule.replicate !== undefined &&
      rule.match.tags !== undefined &&
      (rule.match.resourceTypes === undefined || rule.match.resourceTypes.includes(resourceType))
  )

const volumeIdOf = (resourceArn: string): string | undefined => /:volume\/(vol-[0-9a-zA-Z]+)$/.exec(resourceArn)?.[1]

/**
 * The protected resource's tags: an EBS volume's through EC2 DescribeTags, a DB instance's or
 * cluster's through RDS ListTagsForResource. A resource without tags (or gone since) has none.
 */
export const resourceTags = (clients: RegionClients, resourceType: string, resourceArn: string) =>
  Effect.gen(function* () {
    if (resourceType === "EBS") {
      const volumeId = volumeIdOf(resourceArn)
      if (volumeId === undefined) return {}
      const tags: Record<string, string> = {}
      let nextToken: string | undefined
      do {
        const page = yield* awsCall("ec2:DescribeTags", (abortSignal) =>
          clients.ec2.send(new DescribeTagsCommand({ Filters: [{ Name: "resource-id", Values: [volumeId] }], NextToken: nextToken }), { abortSignal })
        )
        for (const tag of page.Tags ?? []) if (tag.Key !== undefined) tags[tag.Key] = tag.Value ?? ""
        nextToken = page.NextToken
      } while (nextToken !== undefined)
      return tags
    }
    const listed = yield* awsCall("rds:ListTagsForResource", (abortSignal) =>
      clients.rds.send(new ListTagsForResourceCommand({ ResourceName: resourceArn }), { abortSignal })
    ).pipe(
      Effect.catchIf(
        (error) => error.kind === "not-found",
        () => Effect.succeed({ TagList: [] })
      )
    )
    return Object.fromEntries((listed.TagList ?? []).flatMap((tag) => (tag.Key === undefined ? [] : [[tag.Key, tag.Value ?? ""]])))
  })
