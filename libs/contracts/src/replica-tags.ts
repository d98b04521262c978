/**
 * Tags on every replica the sharer makes; the sharer writes them, failover and retention read them. Retention only ever deletes snapshots that carry
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
/**
 * When the source was taken (ISO 8601). A failover reads its recovery point objective from it
 * in the DR region, where the source region may be out of reach; an EBS copy keeps no trace of it.
 */
export const SOURCE_CREATED_AT_TAG = "backup-actions:source-created-at"
/** The policy rule that asked for the replica. */
export const RULE_TAG = "backup-actions:rule"
