import type { Tag } from "@aws-sdk/client-ec2"
import { CREATED_AT_TAG, MANAGED_BY_TAG, RULE_TAG, SHARER, SOURCE_ACCOUNT_TAG, SOURCE_ARN_TAG, SOURCE_CREATED_AT_TAG, SOURCE_RESOURCE_TAG } from "@backup-actions/contracts"

// The tag names are shared with the CLI's failover, which reads them.

export {
  CREATED_AT_TAG,
  MANAGED_BY_TAG,
  RULE_TAG,
  SHARER,
  SOURCE_ACCOUNT_TAG,
  SOURCE_ARN_TAG,
  SOURCE_CREATED_AT_TAG,
  SOURCE_RESOURCE_TAG
} from "@backup-actions/contracts"

/** What a replica's tags say about where it came from. */
export interface ReplicaLabels {
  readonly sourceArn: string
  readonly sourceResourceArn: string
  readonly sourceAccount: string
  readonly rule: string
  readonly createdAt: Date
  /** When the source was taken, when it says. */
  readonly sourceCreatedAt?: Date | undefined
  readonly name: string
}

/** The tags a replica is created with. */
export const replicaTags = (labels: ReplicaLabels): Array<Tag> => [
  { Key: MANAGED_BY_TAG, Value: SHARER },
  { Key: SOURCE_ARN_TAG, Value: labels.sourceArn },
  { Key: SOURCE_RESOURCE_TAG, Value: labels.sourceResourceArn },
  { Key: SOURCE_ACCOUNT_TAG, Value: labels.sourceAccount },
  { Key: CREATED_AT_TAG, Value: labels.createdAt.toISOString() },
  ...(labels.sourceCreatedAt === undefined ? [] : [{ Key: SOURCE_CREATED_AT_TAG, Value: labels.sourceCreatedAt.toISOString() }]),
  { Key: RULE_TAG, Value: labels.rule },
  { Key: "Name", Value: labels.name }
]

/** The value of a tag in an EC2 or RDS tag list. */
export const tagValue = (tags: ReadonlyArray<{ readonly Key?: string | undefined; readonly Value?: string | undefined }> | undefined, key: string) =>
  tags?.find((tag) => tag.Key === key)?.Value
