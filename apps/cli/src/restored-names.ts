/**
 * What the CLI puts on what it makes, which its deployment's IAM conditions name: one place, so
 * that a restore's tag and a drill's names cannot drift from the policies that rely on them.
 */

/** The tag on every snapshot, AMI, table and failover copy a restore makes: what it was restored from. */
export const RESTORED_FROM_TAG = "backup-actions:restored-from"

/** The start of a drill's scratch names (tables, AMIs, databases with `_` for `-`). */
export const DRILL_SCRATCH_PREFIX = "backup-actions-drill-"
