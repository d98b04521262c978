import { Duration } from "aws-cdk-lib"
import type { Construct } from "constructs"
import { MANAGED_TAG_KEY, MANAGED_TAG_VALUE, ServiceStack, type DeployConfig, type ServiceOverrides } from "@backup-actions/deploy"

/**
 * The restorer: a Lambda consumer that makes gp3 volumes from snapshots in the streamer's
 * zone and deletes them again, plus the scheduled sweep of leftovers. It may create volumes
 * only with the project's tag, and delete only volumes that carry it.
 */
export const restorerStack = (scope: Construct, config: DeployConfig, overrides: ServiceOverrides = {}): ServiceStack => {
  const stack = new ServiceStack(scope, "Restorer", { config, service: "restorer", visibilityTimeout: Duration.minutes(15), ...overrides })
  const { consumer, role } = stack.addLambdaConsumer({ memoryMiB: 256, timeout: Duration.minutes(14), batchSize: 1 })
  consumer.addEnvironment("BACKUP_ACTIONS_AVAILABILITY_ZONE", `${config.region}${config.streamer.availabilityZoneSuffix}`)
  const volumes = `arn:${stack.partition}:ec2:${config.region}:${config.account}:volume/*`
  const snapshots = `arn:${stack.partition}:ec2:${config.region}::snapshot/*`
  stack.allow(role, ["ec2:CreateVolume"], [volumes], { StringEquals: { [`aws:RequestTag/${MANAGED_TAG_KEY}`]: MANAGED_TAG_VALUE } })
  stack.allow(role, ["ec2:CreateVolume"], [snapshots])
  stack.allow(role, ["ec2:CreateTags"], [volumes], { StringEquals: { "ec2:CreateAction": "CreateVolume" } })
  stack.allow(role, ["ec2:DeleteVolume"], [volumes], { StringEquals: { [`ec2:ResourceTag/${MANAGED_TAG_KEY}`]: MANAGED_TAG_VALUE } })
  stack.allow(role, ["ec2:DescribeVolumes", "ec2:DescribeSnapshots", "ec2:DescribeAvailabilityZones"], ["*"])
  // A volume from an encrypted snapshot is encrypted with the snapshot's key, through EC2 only.
  stack.allow(
    role,
    ["kms:CreateGrant", "kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKeyWithoutPlaintext", "kms:ReEncryptFrom", "kms:ReEncryptTo"],
    [`arn:${stack.partition}:kms:${config.region}:${config.account}:key/*`],
    { StringEquals: { "kms:ViaService": `ec2.${config.region}.amazonaws.com` } }
  )
  stack.acknowledgeWildcards(role, [
    { resource: "*", reason: "EC2 Describe actions support no resource-level permissions." },
    { resource: `arn:<AWS::Partition>:ec2:${config.region}:${config.account}:volume/*`, reason: "Creates only volumes tagged as the project's (aws:RequestTag) and deletes only those (ec2:ResourceTag)." },
    { resource: `arn:<AWS::Partition>:ec2:${config.region}::snapshot/*`, reason: "Any recovery point's snapshot may be restored; reading a snapshot into a volume changes nothing." },
    { resource: `arn:<AWS::Partition>:kms:${config.region}:${config.account}:key/*`, reason: "The snapshots' own keys, usable only through EC2 (kms:ViaService)." }
  ])
  stack.addSchedules()
  return stack
}
