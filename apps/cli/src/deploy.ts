import { join } from "node:path"
import { Duration, Fn, Stack, Tags, Validations, type StackProps } from "aws-cdk-lib"
import * as dynamodb from "aws-cdk-lib/aws-dynamodb"
import * as ec2 from "aws-cdk-lib/aws-ec2"
import * as ecs from "aws-cdk-lib/aws-ecs"
import * as iam from "aws-cdk-lib/aws-iam"
import * as kms from "aws-cdk-lib/aws-kms"
import * as logs from "aws-cdk-lib/aws-logs"
import * as s3 from "aws-cdk-lib/aws-s3"
import * as scheduler from "aws-cdk-lib/aws-scheduler"
import * as ssm from "aws-cdk-lib/aws-ssm"
import type { Construct } from "constructs"
import { coreExports, coreNames, keyArnParameterName, networkZones, serviceStackName, workspaceRootForDeploy, type DeployConfig } from "@backup-actions/deploy"
import { DRILL_SCRATCH_PREFIX, RESTORED_FROM_TAG } from "./restored-names"


/** What a test (or a deployment) may set on the drill's stack. */
export interface DrillStackProps extends StackProps {
  readonly config: DeployConfig
  /** The container image; by default built from the CLI's bundle and the Dockerfile beside it in dist/. */
  readonly image?: ecs.ContainerImage
  /** How often the task looks for due drills; the policy's drill.every decides which are due. */
  readonly every?: Duration
  /** How long one run may take before it is stopped: below `every`, so that two runs never overlap. */
  readonly timeLimit?: Duration
  /** Local disk for directory restores (Fargate ephemeral storage, 21 to 200 GiB). */
  readonly ephemeralStorageGiB?: number
}

/** The task's size: a restore streams, but a Parquet table and a directory's check hold more than a service's handlers. */
const TASK_CPU = 1_024
const TASK_MEMORY_MIB = 4_096
const DRILL_NODE_OPTIONS = "--max-old-space-size=3072 --enable-source-maps"

/** `rate(...)` for a whole number of days, hours or minutes. */
const rateExpression = (every: Duration): string => {
  const minutes = every.toMinutes()
  if (minutes % 1_440 === 0) return `rate(${minutes / 1_440} ${minutes === 1_440 ? "day" : "days"})`
  if (minutes % 60 === 0) return `rate(${minutes / 60} ${minutes === 60 ? "hour" : "hours"})`
  return `rate(${minutes} ${minutes === 1 ? "minute" : "minutes"})`
}

/**
 * The scheduled restore drill: the operator CLI's `drill` as a Fargate task in the core cluster,
 * started by EventBridge Scheduler (daily by default). The schedule says only how often to look:
 * the policy's drill.every, which the task reads like the services do, decides what is due. The
 * task role may read the artifacts, restore them into scratch (EBS snapshots through EBS direct,
 * AMIs, `backup-actions-drill-*` tables), delete only what a restore made, and keep the drills'
 * records in the ledger; it can neither delete an artifact nor touch a volume.
 */
export class DrillStack extends Stack {
  readonly config: DeployConfig
  readonly names: ReturnType<typeof coreNames>
  readonly ledger: dynamodb.ITable
  readonly bucket: s3.IBucket
  readonly key: kms.IKey
  readonly role: iam.Role
  readonly taskDefinition: ecs.FargateTaskDefinition
  readonly container: ecs.ContainerDefinition
  readonly schedule: scheduler.CfnSchedule

  constructor(scope: Construct, id: string, props: DrillStackProps) {
    super(scope, id, {
      ...props,
      stackName: serviceStackName(props.config, "drill"),
      env: { account: props.config.account, region: props.config.region },
      description: "backup-actions drill: the scheduled restore drill, a Fargate task of the operator CLI"
    })
    const config = props.config
    const policy = config.policy
    if (policy?.drill === undefined) {
      throw new Error('the policy asks for no drills: set policy.drill.every (e.g. "7d") in the deployment configuration before deploying the drill')
    }
    const every = props.every ?? Duration.days(1)
    const timeLimit = props.timeLimit ?? every.minus(Duration.hours(1))
    if (timeLimit.toSeconds() <= 0 || timeLimit.toSeconds() >= every.toSeconds()) {
      throw new Error(`the drill's time limit (${timeLimit.toHumanString()}) must be shorter than its schedule (${every.toHumanString()}), so that two runs never overlap`)
    }
    this.config = config
    this.names = coreNames(config)
    for (const [key, value] of Object.entries(config.tags)) Tags.of(this).add(key, value)
    this.ledger = dynamodb.Table.fromTableName(this, "Ledger", this.names.ledgerTable)
    this.bucket = s3.Bucket.fromBucketName(this, "Artifacts", this.names.artifactBucket)
    this.key = kms.Key.fromKeyArn(this, "Key", ssm.StringParameter.valueForStringParameter(this, keyArnParameterName(config.prefix)))

    // The core network and cluster, as the services' Fargate tasks use them.
    const exported = coreExports(config)
    const zones = networkZones(config)
    const vpc = ec2.Vpc.fromVpcAttributes(this, "Network", {
      vpcId: Fn.importValue(exported.vpcId),
      availabilityZones: [...zones],
      privateSubnetIds: Fn.split(",", Fn.importValue(exported.privateSubnetIds), zones.length)
    })
    const cluster = ecs.Cluster.fromClusterAttributes(this, "Cluster", { clusterName: config.prefix, vpc, securityGroups: [] })
    const securityGroup = new ec2.SecurityGroup(this, "TaskSecurityGroup", { vpc, description: "drill tasks: outbound only", allowAllOutbound: true })

    this.role = new iam.Role(this, "TaskRole", {
      assumedBy: new iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
      description: "The scheduled restore drill: only what the drill's restores call"
    })
    this.taskDefinition = new ecs.FargateTaskDefinition(this, "Task", {
      cpu: TASK_CPU,
      memoryLimitMiB: TASK_MEMORY_MIB,
      ephemeralStorageGiB: props.ephemeralStorageGiB ?? 100,
      taskRole: this.role,
      runtimePlatform: { cpuArchitecture: ecs.CpuArchitecture.X86_64, operatingSystemFamily: ecs.OperatingSystemFamily.LINUX }
    })
    const logGroup = new logs.LogGroup(this, "DrillLogs", { retention: logs.RetentionDays.THREE_MONTHS })
    this.container = this.taskDefinition.addContainer("Drill", {
      image: props.image ?? ecs.ContainerImage.fromAsset(join(workspaceRootForDeploy(), "dist", "apps", "cli")),
      memoryLimitMiB: TASK_MEMORY_MIB,
      // ECS has no limit on a task's run time: GNU timeout stops the drill (SIGTERM, then SIGKILL)
      // before the next run starts, and exits 124 so that the stopped task says why.
      entryPoint: ["timeout", "--kill-after=100s", `${timeLimit.toSeconds()}s`, "node", "main.js"],
      command: ["drill"],
      environment: {
        AWS_REGION: config.region,
        BACKUP_ACTIONS_BUS: this.names.busName,
        BACKUP_ACTIONS_BUCKET: this.names.artifactBucket,
        BACKUP_ACTIONS_LEDGER_TABLE: this.names.ledgerTable,
        BACKUP_ACTIONS_POLICY: JSON.stringify(policy),
        NODE_OPTIONS: DRILL_NODE_OPTIONS
      },
      logging: ecs.LogDrivers.awsLogs({ streamPrefix: "drill", logGroup }),
      readonlyRootFilesystem: false,
      stopTimeout: Duration.seconds(120)
    })
    Validations.of(this.taskDefinition).acknowledge({
      id: "AwsSolutions::AwsSolutions-ECS2",
      reason: "The environment holds names (bus, bucket, table) and the policy, no secrets."
    })
    const executionRole = this.taskDefinition.obtainExecutionRole()
    Validations.of(executionRole).acknowledge({
      id: "AwsSolutions::AwsSolutions-IAM5[Resource::*]",
      reason: "ecr:GetAuthorizationToken supports no resource-level permissions; image pulls are scoped to the asset repository."
    })

    this.grantDrill(this.role)

    const schedulerRole = new iam.Role(this, "SchedulerRole", {
      assumedBy: new iam.ServicePrincipal("scheduler.amazonaws.com", { conditions: { StringEquals: { "aws:SourceAccount": config.account } } }),
      description: "EventBridge Scheduler starting the restore drill's task"
    })
    this.allow(schedulerRole, ["ecs:RunTask"], [this.taskDefinition.taskDefinitionArn], { ArnEquals: { "ecs:cluster": cluster.clusterArn } })
    this.allow(schedulerRole, ["iam:PassRole"], [this.role.roleArn, executionRole.roleArn], { StringEquals: { "iam:PassedToService": "ecs-tasks.amazonaws.com" } })
    this.schedule = new scheduler.CfnSchedule(this, "Schedule", {
      name: `${config.prefix}-drill`,
      description: `Runs the restore drill: drills each resource whose last drill is older than ${policy.drill.every}`,
      scheduleExpression: rateExpression(every),
      scheduleExpressionTimezone: "UTC",
      flexibleTimeWindow: { mode: "OFF" },
      target: {
        arn: cluster.clusterArn,
        roleArn: schedulerRole.roleArn,
        ecsParameters: {
          taskDefinitionArn: this.taskDefinition.taskDefinitionArn,
          taskCount: 1,
          launchType: "FARGATE",
          networkConfiguration: {
            awsvpcConfiguration: {
              subnets: vpc.selectSubnets({ subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS }).subnetIds,
              securityGroups: [securityGroup.securityGroupId],
              assignPublicIp: "DISABLED"
            }
          }
        },
        retryPolicy: { maximumRetryAttempts: 3, maximumEventAgeInSeconds: 3_600 }
      }
    })
  }

  /** Adds one statement to a role: explicit actions (never `*`), the resources, optional conditions. */
  allow(role: iam.IRole, actions: ReadonlyArray<string>, resources: ReadonlyArray<string>, conditions?: Record<string, Record<string, unknown>>): void {
    role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: [...actions], resources: [...resources], ...(conditions === undefined ? {} : { conditions }) }))
  }

  /** What the drill's restores call (apps/cli drill/run.ts and the restore modules), and no more. */
  private grantDrill(role: iam.Role): void {
    const { region, account } = this.config
    const partition = this.partition
    const artifactBucket = this.names.artifactBucket
    const exports = (this.config.policy?.rules ?? []).flatMap((rule) => (rule.export === undefined ? [] : [rule.export]))
    const exportBuckets = [...new Set(exports.map((action) => action.bucket ?? artifactBucket))]
    // Archives (trees, disk images, dumps, direct-mode AMIs) and their manifests; export files
    // under the policy's prefixes; store-image AMI objects where the exporter keeps them.
    const artifactObjects = [
      ...new Set([
        `arn:${partition}:s3:::${artifactBucket}/archives/*`,
        ...exports.map((action) => `arn:${partition}:s3:::${action.bucket ?? artifactBucket}/${action.prefix}/*`),
        ...exportBuckets.map((bucket) => `arn:${partition}:s3:::${bucket}/recovery-points/*`)
      ])
    ]
    const bucketNames = [...new Set([artifactBucket, ...exportBuckets])]
    const buckets = bucketNames.map((bucket) => `arn:${partition}:s3:::${bucket}`)
    // HeadObject covers as GetObject; RestoreObject brings an archive back from cold storage first.
    this.allow(role, ["s3:GetObject", "s3:RestoreObject"], artifactObjects)
    // Whether an object is there: without ListBucket, S3 answers a missing key with 403 instead of 404.
    this.allow(role, ["s3:ListBucket"], buckets)

    const snapshots = `arn:${partition}:ec2:${region}::snapshot/*`
    const images = `arn:${partition}:ec2:${region}::image/*`
    const restoredFromArtifacts = { StringLike: { [`aws:ResourceTag/${RESTORED_FROM_TAG}`]: bucketNames.map((bucket) => `s3://${bucket}/*`) } }
    // A disk image restored into a new snapshot through EBS direct, then read back from it.
    this.allow(role, ["ebs:StartSnapshot", "ebs:PutSnapshotBlock", "ebs:CompleteSnapshot"], [snapshots])
    this.allow(role, ["ebs:ListSnapshotBlocks", "ebs:GetSnapshotBlock"], [snapshots], restoredFromArtifacts)
    // AMIs: registered over restored snapshots, or restored by EC2 from a store-image object.
    this.allow(role, ["ec2:RegisterImage", "ec2:CreateRestoreImageTask"], [images, snapshots])
    this.allow(role, ["ec2:DescribeSnapshots", "ec2:DescribeImages"], ["*"])
    // Tags only as a restore creates what it tags: no existing snapshot or image can be given the tag the deletes trust.
    this.allow(role, ["ec2:CreateTags"], [snapshots, images], { StringEquals: { "ec2:CreateAction": ["StartSnapshot", "RegisterImage", "CreateRestoreImageTask"] } })
    // The scratch goes on every outcome: only snapshots and images a restore of the project's artifacts made.
    this.allow(role, ["ec2:DeleteSnapshot", "ec2:DeregisterImage"], [snapshots, images], restoredFromArtifacts)

    // A table export restored into a scratch table the drill names, compared, then deleted.
    const scratchTables = `arn:${partition}:dynamodb:${region}:${account}:table/${DRILL_SCRATCH_PREFIX}*`
    // TagResource: CreateTable tags the table with the artifact it was restored from.
    this.allow(role, ["dynamodb:CreateTable", "dynamodb:TagResource", "dynamodb:DescribeTable", "dynamodb:BatchWriteItem", "dynamodb:Scan"], [scratchTables])
    this.allow(role, ["dynamodb:DeleteTable"], [scratchTables], restoredFromArtifacts)

    // The reporter's outcomes (what to drill) and the drills' own records.
    this.allow(role, ["dynamodb:Query", "dynamodb:GetItem", "dynamodb:PutItem"], [this.ledger.tableArn])
    // The bucket and the ledger are encrypted with the project's key.
    this.allow(role, ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"], [this.key.keyArn])
    // Encrypted snapshots are written and read with their source's key, through EBS and EC2 only;
    // DescribeKey turns a key id or alias into the ARN StartSnapshot takes.
    const keys = `arn:${partition}:kms:${region}:${account}:key/*`
    this.allow(role, ["kms:CreateGrant", "kms:GenerateDataKeyWithoutPlaintext", "kms:Decrypt"], [keys], {
      StringLike: { "kms:ViaService": [`ebs.${region}.amazonaws.com`, `ec2.${region}.amazonaws.com`] }
    })
    this.allow(role, ["kms:DescribeKey"], [keys])

    const arnForNag = (arn: string) => arn.replace(`arn:${partition}:`, "arn:<AWS::Partition>:")
    for (const [resource, reason] of [
      ["*", "EC2 Describe actions support no resource-level permissions."],
      [snapshots, "Restores write new snapshots; reads, deletes and tags only those a restore of the project's artifacts made (tag conditions)."],
      [images, "Registers new AMIs; deregisters only those a restore of the project's artifacts made (tag condition)."],
      [scratchTables, "The drill's own scratch tables (by name), deleted only when a restore of the project's artifacts made them."],
      [keys, "The snapshots' own keys: grants and data keys only through EBS and EC2 (kms:ViaService); DescribeKey reads metadata only."],
      ...artifactObjects.map((arn) => [arn, "Reads (and brings back from cold storage) artifacts, only under the prefixes they are written to."])
    ] as const) {
      Validations.of(role).acknowledge({ id: `AwsSolutions::AwsSolutions-IAM5[Resource::${resource === "*" ? "*" : arnForNag(resource)}]`, reason })
    }
  }
}

/** The drill's stack from the deployment configuration (what `nx deploy cli` deploys, after the core stack). */
export const drillStack = (scope: Construct, config: DeployConfig, overrides: Omit<DrillStackProps, "config"> = {}): DrillStack => new DrillStack(scope, "Drill", { config, ...overrides })
