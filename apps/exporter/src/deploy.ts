import { Duration } from "aws-cdk-lib"
import type { Construct } from "constructs"
import { DEFAULT_POLICY } from "@backup-actions/config"
import { MANAGED_TAG_KEY, MANAGED_TAG_VALUE, ServiceStack, type DeployConfig, type ServiceOverrides } from "@backup-actions/deploy"

/**
 * The exporter: a Fargate consumer that starts and follows RDS and DynamoDB exports and
 * writes DynamoDB backups as Parquet through a temporary table, which only it may delete.
 */
export const exporterStack = (scope: Construct, config: DeployConfig, overrides: ServiceOverrides = {}): ServiceStack => {
  const stack = new ServiceStack(scope, "Exporter", { config, service: "exporter", visibilityTimeout: Duration.minutes(15), ...overrides })
  // A Fargate task: an RDS export runs for hours, and the Parquet path spools to local disk.
  const { role } = stack.addFargateConsumer({ cpu: 1_024, memoryMiB: 2_048, maxTasks: 2 })
  const region = config.region
  const account = config.account
  const table = (name: string) => `arn:${stack.partition}:dynamodb:${region}:${account}:table/${name}`
  const temporaryTables = table("backup-actions-export-*")
  const exports = (config.policy ?? DEFAULT_POLICY).rules.flatMap((rule) => (rule.export === undefined ? [] : [rule.export]))
  const exportBuckets = [...new Set(exports.map((action) => action.bucket ?? stack.names.artifactBucket))]
  const exportObjects = exportBuckets.flatMap((bucket) => exports.map((action) => `arn:${stack.partition}:s3:::${bucket}/${action.prefix}/*`))
  const exportRoles = [...new Set(exports.flatMap((action) => (action.iamRoleArn === undefined ? [] : [action.iamRoleArn])))]
  const exportKeys = [...new Set(exports.flatMap((action) => (action.kmsKeyId?.startsWith("arn:") === true ? [action.kmsKeyId] : [])))]

  // RDS and Aurora: native export to Parquet.
  stack.allow(role, ["rds:StartExportTask"], [
    `arn:${stack.partition}:rds:${region}:${account}:snapshot:*`,
    `arn:${stack.partition}:rds:${region}:${account}:cluster-snapshot:*`
  ])
  stack.allow(role, ["rds:DescribeExportTasks", "rds:DescribeDBSnapshots", "rds:DescribeDBClusterSnapshots"], ["*"])
  if (exportRoles.length > 0) stack.allow(role, ["iam:PassRole"], exportRoles, { StringEquals: { "iam:PassedToService": "export.rds.amazonaws.com" } })
  if (exportKeys.length > 0) stack.allow(role, ["kms:DescribeKey", "kms:CreateGrant"], exportKeys)

  // DynamoDB: native export, and restore of a backup to a temporary table for Parquet.
  stack.allow(role, ["dynamodb:ExportTableToPointInTime", "dynamodb:DescribeExport"], [table("*")])
  stack.allow(role, ["dynamodb:ListBackups", "dynamodb:ListExports", "dynamodb:ListTables"], ["*"])
  stack.allow(role, ["dynamodb:RestoreTableFromBackup"], [table("*/backup/*")])
  stack.allow(
    role,
    [
      "dynamodb:RestoreTableFromBackup",
      "dynamodb:DescribeTable",
      "dynamodb:Scan",
      "dynamodb:TagResource",
      "dynamodb:ListTagsOfResource",
      "dynamodb:PutItem",
      "dynamodb:UpdateItem",
      "dynamodb:DeleteItem",
      "dynamodb:GetItem",
      "dynamodb:Query",
      "dynamodb:BatchWriteItem"
    ],
    [temporaryTables]
  )
  stack.allow(role, ["dynamodb:DeleteTable"], [temporaryTables], { StringEquals: { [`aws:ResourceTag/${MANAGED_TAG_KEY}`]: MANAGED_TAG_VALUE } })
  // The protected resource's tags, for rules that match on them: read only, in whichever region the resource is.
  const taggedResources = [
    `arn:${stack.partition}:rds:*:${account}:db:*`,
    `arn:${stack.partition}:rds:*:${account}:cluster:*`,
    `arn:${stack.partition}:dynamodb:*:${account}:table/*`
  ]
  stack.allow(role, ["rds:ListTagsForResource"], taggedResources.slice(0, 2))
  stack.allow(role, ["dynamodb:ListTagsOfResource"], taggedResources.slice(2))
  // The AMI sweep asks AWS Backup which vault holds an AMI when an export rule names vaults.
  const vaults = `arn:${stack.partition}:backup:${region}:${account}:backup-vault:*`
  stack.allow(role, ["backup:ListRecoveryPointsByBackupVault"], [vaults])
  const recoveryPoints = `arn:${stack.partition}:backup:${region}:${account}:recovery-point:*`
  stack.allow(role, ["backup:DeleteRecoveryPoint"], [recoveryPoints], { StringEquals: { [`aws:ResourceTag/${MANAGED_TAG_KEY}`]: MANAGED_TAG_VALUE } })
  // The describe after a delete says what became of it; a recovery point already gone has no tags to condition on.
  stack.allow(role, ["backup:DescribeRecoveryPoint"], [recoveryPoints])
  // EC2 AMIs: store-image tasks (which read the image's snapshots through EBS direct), the copy
  // into the storage class, and deregistering only the project's images after a verified copy.
  stack.allow(
    role,
    ["ec2:CreateStoreImageTask", "ec2:DescribeStoreImageTasks", "ec2:DescribeImages", "ec2:DescribeSnapshots", "ec2:DescribeTags", "ebs:ListSnapshotBlocks", "ebs:GetSnapshotBlock"],
    ["*"]
  )
  stack.allow(role, ["ec2:DeregisterImage"], [`arn:${stack.partition}:ec2:${region}::image/*`], { StringEquals: { [`ec2:ResourceTag/${MANAGED_TAG_KEY}`]: MANAGED_TAG_VALUE } })
  stack.allow(role, ["ec2:DeleteSnapshot"], [`arn:${stack.partition}:ec2:${region}::snapshot/*`], { StringEquals: { [`ec2:ResourceTag/${MANAGED_TAG_KEY}`]: MANAGED_TAG_VALUE } })
  const amiObjects = [
    ...exportBuckets.flatMap((bucket) => [`arn:${stack.partition}:s3:::${bucket}/ami-*.bin`, `arn:${stack.partition}:s3:::${bucket}/recovery-points/*`]),
    `arn:${stack.partition}:s3:::${stack.names.artifactBucket}/archives/ami/*`
  ]
  // A copy into the storage class carries the stored image's tags over: read there, written here.
  stack.allow(role, ["s3:GetObject", "s3:GetObjectTagging", "s3:PutObject", "s3:PutObjectTagging", "s3:DeleteObject", "s3:AbortMultipartUpload"], amiObjects)
  // Whether a stored image is there yet: without ListBucket, S3 answers a missing key with 403 instead of 404.
  stack.allow(role, ["s3:ListBucket"], exportBuckets.map((bucket) => `arn:${stack.partition}:s3:::${bucket}`))
  if (exportObjects.length > 0) {
    // PutObjectAcl: DynamoDB's export writes its files as the caller, with their ACL.
    stack.allow(role, ["s3:PutObject", "s3:PutObjectAcl", "s3:GetObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"], exportObjects)
  }
  stack.acknowledgeWildcards(role, [
    { resource: "*", reason: "RDS Describe* and DynamoDB List* actions support no resource-level permissions." },
    { resource: `arn:<AWS::Partition>:rds:${region}:${account}:snapshot:*`, reason: "Any DB snapshot that a recovery point names may be exported; exporting changes nothing in it." },
    { resource: `arn:<AWS::Partition>:rds:${region}:${account}:cluster-snapshot:*`, reason: "Any cluster snapshot that a recovery point names may be exported." },
    { resource: `arn:<AWS::Partition>:dynamodb:${region}:${account}:table/*`, reason: "Any table may be exported to a point in time; the export reads it only." },
    { resource: `arn:<AWS::Partition>:dynamodb:${region}:${account}:table/*/backup/*`, reason: "Any backup that a recovery point names may be restored to a temporary table." },
    {
      resource: `arn:<AWS::Partition>:dynamodb:${region}:${account}:table/backup-actions-export-*`,
      reason: "The exporter's own temporary tables (by name), their tags read by the sweep, deleted only when tagged as the project's."
    },
    {
      resource: `arn:<AWS::Partition>:backup:${region}:${account}:recovery-point:*`,
      reason: "Deletes only recovery points tagged as the project's, and only after a verified export; describes them to confirm the delete."
    },
    ...taggedResources.map((resource) => ({
      resource: resource.replace(`arn:${stack.partition}:`, "arn:<AWS::Partition>:"),
      reason: "Reads (only) the tags of the resource a recovery point protects, for rules that match on tags."
    })),
    {
      resource: `arn:<AWS::Partition>:backup:${region}:${account}:backup-vault:*`,
      reason: "Lists (reads only) the EC2 recovery points of the vaults the policy's export rules name, which the policy may change without a deployment."
    },
    { resource: `arn:<AWS::Partition>:ec2:${region}::image/*`, reason: "Deregisters only images tagged as the project's, after a verified copy." },
    { resource: `arn:<AWS::Partition>:ec2:${region}::snapshot/*`, reason: "Deletes only the snapshots of images tagged as the project's." },
    ...amiObjects.map((resource) => ({ resource: resource.replace(`arn:${stack.partition}:`, "arn:<AWS::Partition>:"), reason: "Stored images, their Glacier copies and image metadata, only under those keys." })),
    ...exportObjects.map((resource) => ({ resource: resource.replace(`arn:${stack.partition}:`, "arn:<AWS::Partition>:"), reason: "Export files, only under the policy's prefix." }))
  ])
  stack.addSchedules()
  return stack
}
