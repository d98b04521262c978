import { Duration } from "aws-cdk-lib"
import type { Construct } from "constructs"
import { restoredPasswordsArn } from "@backup-actions/config"
import { MANAGED_TAG_KEY, MANAGED_TAG_VALUE, ServiceStack, type DeployConfig, type ServiceOverrides } from "@backup-actions/deploy"

/** How the instances the restorer makes are named (db-instances.ts dumpInstanceId): its RDS rights stop at these names. */
export const DUMP_INSTANCE_PREFIX = "ba-dump-"

/**
 * The restorer: makes gp3 volumes from snapshots in the streamer's zone and small DB instances
 * from DB snapshots (their password in SSM), deletes them again, and sweeps leftovers on a
 * schedule. A DB restore outlasts a Lambda invocation, so it runs as a Fargate consumer. It
 * may create volumes and instances only with the project's tag, and delete only those.
 */
export const restorerStack = (scope: Construct, config: DeployConfig, overrides: ServiceOverrides = {}): ServiceStack => {
  const stack = new ServiceStack(scope, "Restorer", { config, service: "restorer", visibilityTimeout: Duration.minutes(15), ...overrides })
  const { role, container } = stack.addFargateConsumer({ cpu: 256, memoryMiB: 512, maxTasks: 2 })
  container.addEnvironment("BACKUP_ACTIONS_AVAILABILITY_ZONE", `${config.region}${config.streamer.availabilityZoneSuffix}`)
  // Only instances named as the restorer names them: tagging any other instance as the project's
  // (and then deleting it) is not possible, and a restore cannot take another instance's name.
  const dbInstances = `arn:${stack.partition}:rds:${config.region}:${config.account}:db:${DUMP_INSTANCE_PREFIX}*`
  const dbSnapshots = `arn:${stack.partition}:rds:${config.region}:${config.account}:snapshot:*`
  const passwords = restoredPasswordsArn(stack.partition, config.region, config.account)
  stack.allow(role, ["rds:RestoreDBInstanceFromDBSnapshot"], [dbSnapshots])
  stack.allow(role, ["rds:RestoreDBInstanceFromDBSnapshot", "rds:AddTagsToResource"], [dbInstances], {
    StringEquals: { [`aws:RequestTag/${MANAGED_TAG_KEY}`]: MANAGED_TAG_VALUE }
  })
  stack.allow(role, ["rds:ModifyDBInstance", "rds:DeleteDBInstance"], [dbInstances], { StringEquals: { [`aws:ResourceTag/${MANAGED_TAG_KEY}`]: MANAGED_TAG_VALUE } })
  stack.allow(role, ["rds:DescribeDBInstances", "rds:DescribeDBSnapshots", "ssm:DescribeParameters"], ["*"])
  stack.allow(role, ["ssm:PutParameter", "ssm:DeleteParameter"], [passwords])
  const volumes = `arn:${stack.partition}:ec2:${config.region}:${config.account}:volume/*`
  const snapshots = `arn:${stack.partition}:ec2:${config.region}::snapshot/*`
  stack.allow(role, ["ec2:CreateVolume"], [volumes], { StringEquals: { [`aws:RequestTag/${MANAGED_TAG_KEY}`]: MANAGED_TAG_VALUE } })
  stack.allow(role, ["ec2:CreateVolume"], [snapshots])
  stack.allow(role, ["ec2:CreateTags"], [volumes], { StringEquals: { "ec2:CreateAction": "CreateVolume" } })
  stack.allow(role, ["ec2:DeleteVolume"], [volumes], { StringEquals: { [`ec2:ResourceTag/${MANAGED_TAG_KEY}`]: MANAGED_TAG_VALUE } })
  stack.allow(role, ["ec2:DescribeVolumes", "ec2:DescribeSnapshots", "ec2:DescribeAvailabilityZones", "ec2:DescribeTags"], ["*"])
  // The protected resource's tags, for rules that match on them: read only, in whichever region the resource is.
  const taggedResources = [
    `arn:${stack.partition}:rds:*:${config.account}:db:*`,
    `arn:${stack.partition}:rds:*:${config.account}:cluster:*`,
    `arn:${stack.partition}:dynamodb:*:${config.account}:table/*`
  ]
  stack.allow(role, ["rds:ListTagsForResource"], taggedResources.slice(0, 2))
  stack.allow(role, ["dynamodb:ListTagsOfResource"], taggedResources.slice(2))
  // A volume from an encrypted snapshot is encrypted with the snapshot's key, through EC2 only.
  stack.allow(
    role,
    ["kms:CreateGrant", "kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKeyWithoutPlaintext", "kms:ReEncryptFrom", "kms:ReEncryptTo"],
    [`arn:${stack.partition}:kms:${config.region}:${config.account}:key/*`],
    { StringEquals: { "kms:ViaService": `ec2.${config.region}.amazonaws.com` } }
  )
  stack.acknowledgeWildcards(role, [
    { resource: "*", reason: "EC2 and RDS Describe actions and SSM DescribeParameters support no resource-level permissions." },
    {
      resource: `arn:<AWS::Partition>:rds:${config.region}:${config.account}:db:${DUMP_INSTANCE_PREFIX}*`,
      reason: "Only the instances it names itself: creates them tagged as the project's (aws:RequestTag), modifies or deletes only those (aws:ResourceTag)."
    },
    { resource: `arn:<AWS::Partition>:rds:${config.region}:${config.account}:snapshot:*`, reason: "Any recovery point's DB snapshot may be restored; restoring changes nothing in it." },
    { resource: restoredPasswordsArn("<AWS::Partition>", config.region, config.account), reason: "Only the passwords of the instances it restored, under its own path." },
    { resource: `arn:<AWS::Partition>:ec2:${config.region}:${config.account}:volume/*`, reason: "Creates only volumes tagged as the project's (aws:RequestTag) and deletes only those (ec2:ResourceTag)." },
    { resource: `arn:<AWS::Partition>:ec2:${config.region}::snapshot/*`, reason: "Any recovery point's snapshot may be restored; reading a snapshot into a volume changes nothing." },
    { resource: `arn:<AWS::Partition>:kms:${config.region}:${config.account}:key/*`, reason: "The snapshots' own keys, usable only through EC2 (kms:ViaService)." },
    ...taggedResources.map((resource) => ({
      resource: resource.replace(`arn:${stack.partition}:`, "arn:<AWS::Partition>:"),
      reason: "Reads (only) the tags of the resource a recovery point protects, for rules that match on tags."
    }))
  ])
  stack.addSchedules()
  return stack
}
