import { Duration, Tags, Validations } from "aws-cdk-lib"
import * as autoscaling from "aws-cdk-lib/aws-autoscaling"
import * as ec2 from "aws-cdk-lib/aws-ec2"
import * as ecs from "aws-cdk-lib/aws-ecs"
import * as iam from "aws-cdk-lib/aws-iam"
import type { Construct } from "constructs"
import { restoredPasswordsArn } from "@backup-actions/config"
import { MANAGED_TAG_KEY, MANAGED_TAG_VALUE, ServiceStack, networkZones, type DeployConfig, type ServiceOverrides } from "@backup-actions/deploy"

/** Instances the streamer runs on carry this tag; it may attach volumes only to them. */
export const STREAMER_INSTANCE_TAG = "backup-actions:streamer"

/**
 * The streamer. With `ec2` compute (the default): one privileged container per instance (an
 * ECS daemon) on Spot-capable instances in the restorer's zone, so that it can attach restored
 * volumes and mount them read-only; the group grows with the queue and shrinks to none. With
 * `fargate`: direct mode only, reading snapshots through the EBS direct APIs.
 */
export const streamerStack = (scope: Construct, config: DeployConfig, overrides: ServiceOverrides = {}): ServiceStack => {
  const stack = new ServiceStack(scope, "Streamer", { config, service: "streamer", visibilityTimeout: Duration.minutes(5), ...overrides })
  const role =
    config.streamer.compute === "fargate"
      ? stack.addFargateConsumer({ cpu: 2_048, memoryMiB: 4_096, maxTasks: config.streamer.maxInstances }).role
      : addInstanceConsumer(stack, config, stack.serviceImage())
  const { region, account } = config
  const snapshots = `arn:${stack.partition}:ec2:${region}::snapshot/*`
  const volumes = `arn:${stack.partition}:ec2:${region}:${account}:volume/*`
  const instances = `arn:${stack.partition}:ec2:${region}:${account}:instance/*`
  stack.allow(role, ["ebs:ListSnapshotBlocks", "ebs:GetSnapshotBlock"], [snapshots])
  stack.allow(role, ["ec2:DescribeSnapshots", "ec2:DescribeVolumes", "ec2:DescribeTags"], ["*"])
  stack.allow(role, ["ec2:AttachVolume", "ec2:DetachVolume"], [volumes], { StringEquals: { [`ec2:ResourceTag/${MANAGED_TAG_KEY}`]: MANAGED_TAG_VALUE } })
  stack.allow(role, ["ec2:AttachVolume", "ec2:DetachVolume"], [instances], { StringEquals: { [`ec2:ResourceTag/${STREAMER_INSTANCE_TAG}`]: "true" } })
  stack.allow(
    role,
    // PutObjectTagging: an archive is tagged for cold storage as its upload is created.
    ["s3:PutObject", "s3:PutObjectTagging", "s3:GetObject", "s3:DeleteObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
    [stack.bucket.arnForObjects("archives/*")]
  )
  const recoveryPoints = `arn:${stack.partition}:backup:${region}:${account}:recovery-point:*`
  stack.allow(role, ["backup:DeleteRecoveryPoint"], [recoveryPoints], { StringEquals: { [`aws:ResourceTag/${MANAGED_TAG_KEY}`]: MANAGED_TAG_VALUE } })
  // The describe after a delete says what became of the recovery point. Not under the tag
  // condition: a recovery point already gone has no tags, and must read as not found, not denied.
  stack.allow(role, ["backup:DescribeRecoveryPoint"], [recoveryPoints])
  // Dump mode: the password of an instance the restorer made, and nothing else in SSM.
  stack.allow(role, ["ssm:GetParameter"], [restoredPasswordsArn(stack.partition, region, account)])
  // Encrypted snapshots and SecureStrings are read with their own keys, through EBS and SSM only.
  stack.allow(role, ["kms:Decrypt", "kms:DescribeKey"], [`arn:${stack.partition}:kms:${region}:${account}:key/*`], {
    StringLike: { "kms:ViaService": [`ebs.${region}.amazonaws.com`, `ec2.${region}.amazonaws.com`, `ssm.${region}.amazonaws.com`] }
  })
  if (role instanceof iam.Role) {
    stack.acknowledgeWildcards(role, [
      { resource: "*", reason: "EC2 Describe actions support no resource-level permissions." },
      { resource: `arn:<AWS::Partition>:ec2:${region}::snapshot/*`, reason: "Any recovery point's snapshot may be read; reading changes nothing." },
      { resource: `arn:<AWS::Partition>:ec2:${region}:${account}:volume/*`, reason: "Attaches only volumes tagged as the project's (restored by the restorer)." },
      { resource: `arn:<AWS::Partition>:ec2:${region}:${account}:instance/*`, reason: "Attaches only to the streamer's own instances (instance tag condition)." },
      { resource: `arn:<AWS::Partition>:s3:::${stack.names.artifactBucket}/archives/*`, reason: "Archives and manifests, only under archives/." },
      {
        resource: `arn:<AWS::Partition>:backup:${region}:${account}:recovery-point:*`,
        reason: "Deletes only recovery points tagged as the project's, and only after a verified archive; describes them to confirm the delete."
      },
      { resource: `arn:<AWS::Partition>:kms:${region}:${account}:key/*`, reason: "The snapshots' and parameters' own keys, usable only through EBS, EC2 and SSM (kms:ViaService)." },
      { resource: restoredPasswordsArn("<AWS::Partition>", region, account), reason: "Only the passwords of instances the restorer made, under its path." }
    ])
  }
  return stack
}

/** EC2 capacity in the restorer's zone and the streamer as a privileged daemon on it. */
const addInstanceConsumer = (stack: ServiceStack, config: DeployConfig, image: ecs.ContainerImage): iam.Role => {
  const { vpc, cluster } = stack.importCluster()
  const [zone] = networkZones(config)
  const instanceRole = new iam.Role(stack, "InstanceRole", {
    assumedBy: new iam.ServicePrincipal("ec2.amazonaws.com"),
    managedPolicies: [iam.ManagedPolicy.fromAwsManagedPolicyName("service-role/AmazonEC2ContainerServiceforEC2Role")],
    description: "The streamer's container instances: join the cluster"
  })
  Validations.of(instanceRole).acknowledge({
    id: "AwsSolutions::AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonEC2ContainerServiceforEC2Role]",
    reason: "AWS's policy for ECS container instances (register, poll for tasks, pull images), maintained by AWS."
  })
  const securityGroup = new ec2.SecurityGroup(stack, "InstanceSecurityGroup", { vpc, description: "streamer instances: outbound only", allowAllOutbound: true })
  const userData = ec2.UserData.forLinux()
  userData.addCommands(`echo ECS_CLUSTER=${config.prefix} >> /etc/ecs/ecs.config`)
  const launchTemplate = new ec2.LaunchTemplate(stack, "LaunchTemplate", {
    machineImage: ecs.EcsOptimizedImage.amazonLinux2023(),
    instanceType: new ec2.InstanceType(config.streamer.instanceType),
    role: instanceRole,
    securityGroup,
    userData,
    requireImdsv2: true,
    httpPutResponseHopLimit: 2,
    detailedMonitoring: true,
    blockDevices: [{ deviceName: "/dev/xvda", volume: ec2.BlockDeviceVolume.ebs(40, { encrypted: true, volumeType: ec2.EbsDeviceVolumeType.GP3 }) }]
  })
  const group = new autoscaling.AutoScalingGroup(stack, "Instances", {
    vpc,
    vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS, availabilityZones: [zone] },
    minCapacity: 0,
    maxCapacity: config.streamer.maxInstances,
    mixedInstancesPolicy: {
      launchTemplate,
      instancesDistribution: {
        onDemandBaseCapacity: 0,
        onDemandPercentageAboveBaseCapacity: config.streamer.spot ? 0 : 100,
        spotAllocationStrategy: autoscaling.SpotAllocationStrategy.PRICE_CAPACITY_OPTIMIZED
      }
    },
    notifications: [{ topic: stack.topic, scalingEvents: autoscaling.ScalingEvents.ERRORS }],
    healthChecks: autoscaling.HealthChecks.ec2({ gracePeriod: Duration.minutes(5) })
  })
  Tags.of(group).add(STREAMER_INSTANCE_TAG, "true", { applyToLaunchedInstances: true })
  Validations.of(group).acknowledge({
    id: "AwsSolutions::AwsSolutions-AS3",
    reason: "The group grows and shrinks with the queue many times a day; only scaling errors go to the notification topic."
  })
  Validations.of(group).acknowledge({
    id: "AwsSolutions::AwsSolutions-EC26",
    reason: "The launch template encrypts the root volume (blockDevices encrypted); the check cannot read a mixed instances policy's launch template."
  })
  group.scaleOnMetric("QueueDepth", { ...stack.queueDepthScaling(10), adjustmentType: autoscaling.AdjustmentType.CHANGE_IN_CAPACITY })
  const role = new iam.Role(stack, "TaskRole", {
    assumedBy: new iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
    description: "The streamer: only what its handlers call"
  })
  const taskDefinition = new ecs.Ec2TaskDefinition(stack, "Task", { taskRole: role, networkMode: ecs.NetworkMode.HOST })
  // Privileged: it attaches block devices and mounts them read-only inside the container.
  stack.addConsumerContainer(taskDefinition, { image, memoryMiB: 1_024, privileged: true })
  new ecs.Ec2Service(stack, "Service", { cluster, taskDefinition, daemon: true, minHealthyPercent: 0, maxHealthyPercent: 100 })
  stack.grantCommon(role)
  stack.acknowledgeExecutionRole(taskDefinition)
  return role
}
