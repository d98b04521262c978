import { Duration } from "aws-cdk-lib"
import type { Construct } from "constructs"
import { MANAGED_TAG_KEY, MANAGED_TAG_VALUE, ServiceStack, type DeployConfig, type ServiceOverrides } from "@backup-actions/deploy"
import { MANAGED_BY_TAG, SHARER } from "./tags"

/** How the sharer names its RDS replicas and their staging copies (rds.ts dbSnapshotIdentifier: "dr-...", "dr-staging-..."). */
export const REPLICA_SNAPSHOT_PREFIX = "dr-"

/**
 * The sharer: a Fargate consumer (a copy can take hours) that shares the project's recovery
 * points with the DR accounts, copies them there through the destination roles, and deletes
 * only the replicas it made.
 */
export const sharerStack = (scope: Construct, config: DeployConfig, overrides: ServiceOverrides = {}): ServiceStack => {
  const stack = new ServiceStack(scope, "Sharer", { config, service: "sharer", visibilityTimeout: Duration.minutes(10), ...overrides })
  const { role } = stack.addFargateConsumer({ cpu: 256, memoryMiB: 512, maxTasks: 2 })
  const { region, account } = config
  // Any region: a replica in another region of this account is made (and later deleted) there.
  const snapshots = `arn:${stack.partition}:ec2:*::snapshot/*`
  const dbSnapshots = `arn:${stack.partition}:rds:*:${account}:snapshot:*`
  const clusterSnapshots = `arn:${stack.partition}:rds:*:${account}:cluster-snapshot:*`
  // The RDS snapshots the sharer makes: only these may be tagged (and so become deletable as its own).
  const dbReplicas = `arn:${stack.partition}:rds:*:${account}:snapshot:${REPLICA_SNAPSHOT_PREFIX}*`
  const clusterReplicas = `arn:${stack.partition}:rds:*:${account}:cluster-snapshot:${REPLICA_SNAPSHOT_PREFIX}*`
  const projectTag = { [MANAGED_TAG_KEY]: MANAGED_TAG_VALUE }
  stack.allow(role, ["ec2:DescribeSnapshots", "ec2:DescribeSnapshotAttribute", "ec2:DescribeVolumes", "rds:DescribeDBSnapshots", "rds:DescribeDBSnapshotAttributes", "rds:DescribeDBClusterSnapshots", "rds:DescribeDBClusterSnapshotAttributes", "rds:ListTagsForResource", "ec2:DescribeTags"], ["*"])
  // The protected resource's tags, for rules that match on them (EC2 and RDS read them above): read only, in whichever region the table is.
  const tables = `arn:${stack.partition}:dynamodb:*:${account}:table/*`
  stack.allow(role, ["dynamodb:ListTagsOfResource"], [tables])
  // Share only the project's recovery points (AWS Backup tags them from the plan).
  stack.allow(role, ["ec2:ModifySnapshotAttribute"], [snapshots], { StringEquals: prefixed("ec2:ResourceTag/", projectTag) })
  stack.allow(role, ["rds:ModifyDBSnapshotAttribute"], [dbSnapshots], { StringEquals: prefixed("rds:snapshot-tag/", projectTag) })
  stack.allow(role, ["rds:ModifyDBClusterSnapshotAttribute"], [clusterSnapshots], { StringEquals: prefixed("rds:cluster-snapshot-tag/", projectTag) })
  // Copies within this account (another region), tagged as the sharer's as they are made.
  stack.allow(role, ["ec2:CopySnapshot"], [snapshots])
  stack.allow(role, ["ec2:CreateTags"], [snapshots], { StringEquals: { "ec2:CreateAction": "CopySnapshot" } })
  // RDS authorizes the tags of a copy as rds:AddTagsToResource, which has no creation-only
  // condition: it is limited to the names the sharer gives its copies, so that no existing
  // snapshot can be tagged as the sharer's and then deleted by the retention below.
  stack.allow(role, ["rds:CopyDBSnapshot"], [dbSnapshots])
  stack.allow(role, ["rds:CopyDBClusterSnapshot"], [clusterSnapshots])
  stack.allow(role, ["rds:AddTagsToResource"], [dbReplicas, clusterReplicas])
  // Retention deletes only what the sharer made: its tag, on its names.
  stack.allow(role, ["ec2:DeleteSnapshot"], [snapshots], { StringEquals: { [`ec2:ResourceTag/${MANAGED_BY_TAG}`]: SHARER } })
  stack.allow(role, ["rds:DeleteDBSnapshot"], [dbReplicas], { StringEquals: { [`rds:snapshot-tag/${MANAGED_BY_TAG}`]: SHARER } })
  stack.allow(role, ["rds:DeleteDBClusterSnapshot"], [clusterReplicas], { StringEquals: { [`rds:cluster-snapshot-tag/${MANAGED_BY_TAG}`]: SHARER } })
  const keys = `arn:${stack.partition}:kms:*:${account}:key/*`
  // The sharer reads a key's metadata itself (is it AWS managed, is it enabled); grants only through EC2 and RDS.
  stack.allow(role, ["kms:DescribeKey"], [keys])
  stack.allow(role, ["kms:CreateGrant"], [keys], { StringLike: { "kms:ViaService": ["ec2.*.amazonaws.com", "rds.*.amazonaws.com"] } })
  // The catch-up asks AWS Backup which vault holds a listed snapshot when a rule names vaults.
  stack.allow(role, ["backup:ListRecoveryPointsByBackupVault"], [`arn:${stack.partition}:backup:${region}:${account}:backup-vault:*`])
  if (config.destinations.length > 0) stack.allow(role, ["sts:AssumeRole"], config.destinations.map((destination) => destination.roleArn))
  stack.acknowledgeWildcards(role, [
    { resource: "*", reason: "EC2 and RDS Describe actions support no resource-level permissions." },
    {
      resource: "arn:<AWS::Partition>:ec2:*::snapshot/*",
      reason: "Shares only snapshots tagged as the project's, deletes only the sharer's replicas (resource tag conditions), in any region a rule replicates to."
    },
    {
      resource: `arn:<AWS::Partition>:rds:*:${account}:snapshot:*`,
      reason: "Shares only DB snapshots tagged as the project's (snapshot tag condition) and copies any recovery point's, in any region a rule replicates to."
    },
    {
      resource: `arn:<AWS::Partition>:rds:*:${account}:cluster-snapshot:*`,
      reason: "Shares only DB cluster snapshots tagged as the project's (cluster snapshot tag condition) and copies any recovery point's."
    },
    {
      resource: `arn:<AWS::Partition>:rds:*:${account}:snapshot:${REPLICA_SNAPSHOT_PREFIX}*`,
      reason: "Tags and deletes only DB snapshots named as the sharer names its replicas, deletes only those tagged as its own, in any region a rule replicates to."
    },
    {
      resource: `arn:<AWS::Partition>:rds:*:${account}:cluster-snapshot:${REPLICA_SNAPSHOT_PREFIX}*`,
      reason: "Tags and deletes only DB cluster snapshots named as the sharer names its replicas, deletes only those tagged as its own."
    },
    { resource: `arn:<AWS::Partition>:kms:*:${account}:key/*`, reason: "The snapshots' keys: their metadata read, grants made only through EC2 and RDS (kms:ViaService)." },
    { resource: `arn:<AWS::Partition>:dynamodb:*:${account}:table/*`, reason: "Reads (only) the tags of the table a recovery point protects, for rules that match on tags." },
    { resource: `arn:<AWS::Partition>:backup:${region}:${account}:backup-vault:*`, reason: "Lists (reads only) the recovery points of the vaults the policy's rules name, which the policy may change without a deployment." }
  ])
  stack.addSchedules()
  return stack
}

const prefixed = (prefix: string, tags: Record<string, string>): Record<string, string> =>
  Object.fromEntries(Object.entries(tags).map(([key, value]) => [`${prefix}${key}`, value]))
