import type { Tag } from "@aws-sdk/client-ec2"

/**
 * Tags on every replica the sharer makes. Retention only ever deletes snapshots that carry
 * MANAGED_BY_TAG = SHARER, and counts their age from CREATED_AT_TAG: names are never parsed.
 */
export const MANAGED_BY_TAG = "backup-actions:managed-by"
/** The value of MANAGED_BY_TAG on the sharer's replicas. */
export const SHARER = "sharer"
/** The recovery point (source snapshot) the replica was copied from. */
export const SOURCE_ARN_TAG = "backup-actions:source-arn"
/** The protected resource (volume, DB instance) whose replicas retention counts together. */
export const SOURCE_RESOURCE_TAG = "backup-actions:source-resource"
/** The account the source lives in. */
export const SOURCE_ACCOUNT_TAG = "backup-actions:source-account"
/** When the sharer made the replica (ISO 8601): what retention counts age from. */
export const CREATED_AT_TAG = "backup-actions:created-at"
/** The policy rule that asked for the replica. */
export const RULE_TAG = "backup-actions:rule"
/** On the emulator only: the stand-in that plays a snapshot shared from another account. */
export const STAND_IN_FOR_TAG = "backup-actions:stand-in-for"

/** What a replica's tags say about where it came from. */
export interface ReplicaLabels {
  readonly sourceArn: string
  readonly sourceResourceArn: string
  readonly sourceAccount: string
  readonly rule: string
  readonly createdAt: Date
  readonly name: string
}

/** The tags a replica is created with. */
export const replicaTags = (labels: ReplicaLabels): Array<Tag> => [
  { Key: MANAGED_BY_TAG, Value: SHARER },
  { Key: SOURCE_ARN_TAG, Value: labels.sourceArn },
  { Key: SOURCE_RESOURCE_TAG, Value: labels.sourceResourceArn },
  { Key: SOURCE_ACCOUNT_TAG, Value: labels.sourceAccount },
  { Key: CREATED_AT_TAG, Value: labels.createdAt.toISOString() },
  { Key: RULE_TAG, Value: labels.rule },
  { Key: "Name", Value: labels.name }
]

/** The value of a tag in an EC2 or RDS tag list. */
export const tagValue = (tags: ReadonlyArray<{ readonly Key?: string | undefined; readonly Value?: string | undefined }> | undefined, key: string) =>
  tags?.find((tag) => tag.Key === key)?.Value
