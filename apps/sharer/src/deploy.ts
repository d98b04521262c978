import { Duration } from "aws-cdk-lib"
import type { Construct } from "constructs"
import { MANAGED_TAG_KEY, MANAGED_TAG_VALUE, ServiceStack, type DeployConfig, type ServiceOverrides } from "@backup-actions/deploy"
import { MANAGED_BY_TAG, SHARER } from "./tags"

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
  const projectTag = { [MANAGED_TAG_KEY]: MANAGED_TAG_VALUE }
  stack.allow(role, ["ec2:DescribeSnapshots", "ec2:DescribeSnapshotAttribute", "ec2:DescribeVolumes", "rds:DescribeDBSnapshots", "rds:DescribeDBSnapshotAttributes", "rds:DescribeDBClusterSnapshots", "rds:DescribeDBClusterSnapshotAttributes", "rds:ListTagsForResource"], ["*"])
  // Share only the project's recovery points (AWS Backup tags them from the plan).
  stack.allow(role, ["ec2:ModifySnapshotAttribute"], [snapshots], { StringEquals: prefixed("ec2:ResourceTag/", projectTag) })
  stack.allow(role, ["rds:ModifyDBSnapshotAttribute"], [dbSnapshots], { StringEquals: prefixed("rds:snapshot-tag/", projectTag) })
  stack.allow(role, ["rds:ModifyDBClusterSnapshotAttribute"], [clusterSnapshots], { StringEquals: prefixed("rds:cluster-snapshot-tag/", projectTag) })
  // Copies within this account (another region), tagged as the sharer's as they are made.
  stack.allow(role, ["ec2:CopySnapshot"], [snapshots])
  stack.allow(role, ["ec2:CreateTags"], [snapshots], { StringEquals: { "ec2:CreateAction": "CopySnapshot" } })
  stack.allow(role, ["rds:CopyDBSnapshot", "rds:AddTagsToResource"], [dbSnapshots])
  stack.allow(role, ["rds:CopyDBClusterSnapshot", "rds:AddTagsToResource"], [clusterSnapshots])
  // Retention deletes only what the sharer made.
  stack.allow(role, ["ec2:DeleteSnapshot"], [snapshots], { StringEquals: { [`ec2:ResourceTag/${MANAGED_BY_TAG}`]: SHARER } })
  stack.allow(role, ["rds:DeleteDBSnapshot"], [dbSnapshots], { StringEquals: { [`rds:snapshot-tag/${MANAGED_BY_TAG}`]: SHARER } })
  stack.allow(role, ["rds:DeleteDBClusterSnapshot"], [clusterSnapshots], { StringEquals: { [`rds:cluster-snapshot-tag/${MANAGED_BY_TAG}`]: SHARER } })
  stack.allow(role, ["kms:DescribeKey", "kms:CreateGrant"], [`arn:${stack.partition}:kms:*:${account}:key/*`], {
    StringLike: { "kms:ViaService": ["ec2.*.amazonaws.com", "rds.*.amazonaws.com"] }
  })
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
      reason: "Shares only DB snapshots tagged as the project's, deletes only the sharer's replicas (snapshot tag conditions), in any region a rule replicates to."
    },
    {
      resource: `arn:<AWS::Partition>:rds:*:${account}:cluster-snapshot:*`,
      reason: "Shares only DB cluster snapshots tagged as the project's, deletes only the sharer's replicas (cluster snapshot tag conditions)."
    },
    { resource: `arn:<AWS::Partition>:kms:*:${account}:key/*`, reason: "The snapshots' keys, usable only through EC2 and RDS (kms:ViaService)." },
    { resource: `arn:<AWS::Partition>:backup:${region}:${account}:backup-vault:*`, reason: "Lists (reads only) the recovery points of the vaults the policy's rules name, which the policy may change without a deployment." }
  ])
  stack.addSchedules()
  return stack
}

const prefixed = (prefix: string, tags: Record<string, string>): Record<string, string> =>
  Object.fromEntries(Object.entries(tags).map(([key, value]) => [`${prefix}${key}`, value]))
