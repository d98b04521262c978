import { join } from "node:path"
import { App, Aws, Duration, Fn, Stack, Tags, Validations, type StackProps } from "aws-cdk-lib"
import * as appscaling from "aws-cdk-lib/aws-applicationautoscaling"
import * as ec2 from "aws-cdk-lib/aws-ec2"
import * as ecs from "aws-cdk-lib/aws-ecs"
import { AwsSolutionsChecks } from "cdk-nag"
import * as dynamodb from "aws-cdk-lib/aws-dynamodb"
import * as events from "aws-cdk-lib/aws-events"
import * as iam from "aws-cdk-lib/aws-iam"
import * as kms from "aws-cdk-lib/aws-kms"
import * as lambda from "aws-cdk-lib/aws-lambda"
import { SqsEventSource } from "aws-cdk-lib/aws-lambda-event-sources"
import * as nodejs from "aws-cdk-lib/aws-lambda-nodejs"
import * as logs from "aws-cdk-lib/aws-logs"
import * as s3 from "aws-cdk-lib/aws-s3"
import * as scheduler from "aws-cdk-lib/aws-scheduler"
import * as sns from "aws-cdk-lib/aws-sns"
import * as ssm from "aws-cdk-lib/aws-ssm"
import type { Construct } from "constructs"
import { DEFAULT_POLICY, LEDGER_OUTBOX_INDEX, SCHEDULES, patternsFor, scheduleExpression, type ServiceName } from "@backup-actions/config"
import { commandEnvelope, type Contract } from "@backup-actions/contracts"
import { coreExports, coreNames, deployContext, networkZones, serviceStackName } from "./core-names"
import { loadDeployConfig, type DeployConfig } from "./deploy-config"
import { ServiceQueue } from "./service-queue"

/** Where the core stack publishes its key's ARN for the service stacks. */
export const keyArnParameterName = (prefix: string): string => `/${prefix}/key-arn`

/** The repository root, where the services' sources are (CDK apps run from it). */
export const workspaceRootForDeploy = (): string => process.env["BACKUP_ACTIONS_WORKSPACE"] ?? process.cwd()

/** The Node.js flags the services run with: the heap they need is small. */
export const SERVICE_NODE_OPTIONS = "--max-old-space-size=128 --enable-source-maps"

/** What a test (or a deployment) may set on a service stack: the container image. */
export interface ServiceOverrides {
  readonly image?: ecs.ContainerImage
}

export interface ServiceStackProps extends StackProps {
  readonly config: DeployConfig
  readonly service: ServiceName
  /** How long a message stays hidden while its handler runs (the Lambda timeout fits inside it). */
  readonly visibilityTimeout: Duration
  /** The container image of a container consumer; by default built from the service's bundle in dist/. */
  readonly image?: ecs.ContainerImage
}

/**
 * One service's stack: its rules, queue and DLQ (with an alarm), and references to the core
 * stack's bus, ledger, bucket, topic and key by name. The service adds its compute and IAM.
 */
export class ServiceStack extends Stack {
  readonly config: DeployConfig
  readonly service: ServiceName
  readonly names: ReturnType<typeof coreNames>
  readonly bus: events.IEventBus
  readonly ledger: dynamodb.ITable
  readonly bucket: s3.IBucket
  readonly topic: sns.ITopic
  readonly key: kms.IKey
  readonly delivery: ServiceQueue
  private readonly image: ecs.ContainerImage | undefined

  constructor(scope: Construct, id: string, props: ServiceStackProps) {
    super(scope, id, {
      ...props,
      stackName: serviceStackName(props.config, props.service),
      env: { account: props.config.account, region: props.config.region },
      description: `backup-actions ${props.service}: its rules, queue, DLQ and compute`
    })
    this.config = props.config
    this.service = props.service
    this.image = props.image
    this.names = coreNames(props.config)
    for (const [key, value] of Object.entries(props.config.tags)) Tags.of(this).add(key, value)
    this.bus = events.EventBus.fromEventBusName(this, "Bus", this.names.busName)
    this.ledger = dynamodb.Table.fromTableName(this, "Ledger", this.names.ledgerTable)
    this.bucket = s3.Bucket.fromBucketName(this, "Artifacts", this.names.artifactBucket)
    this.topic = sns.Topic.fromTopicArn(this, "Topic", `arn:${Aws.PARTITION}:sns:${props.config.region}:${props.config.account}:${this.names.notificationTopic}`)
    this.key = kms.Key.fromKeyArn(this, "Key", ssm.StringParameter.valueForStringParameter(this, keyArnParameterName(props.config.prefix)))
    this.delivery = new ServiceQueue(this, "Delivery", {
      service: props.service,
      queueName: this.names.queueName(props.service),
      deadLetterQueueName: this.names.deadLetterQueueName(props.service),
      bus: this.bus,
      patterns: patternsFor(props.service),
      ruleName: (detailType) => this.names.ruleName(props.service, detailType),
      visibilityTimeout: props.visibilityTimeout,
      key: this.key,
      alarmTopic: this.topic
    })
  }

  /** The environment every service process reads (libs/config settings.ts). */
  serviceEnvironment(): Record<string, string> {
    return {
      BACKUP_ACTIONS_BUS: this.names.busName,
      BACKUP_ACTIONS_BUCKET: this.names.artifactBucket,
      BACKUP_ACTIONS_LEDGER_TABLE: this.names.ledgerTable,
      BACKUP_ACTIONS_QUEUE_URL: this.delivery.queue.queueUrl,
      BACKUP_ACTIONS_DLQ_URL: this.delivery.deadLetterQueue.queueUrl,
      BACKUP_ACTIONS_TOPIC_ARN: this.topic.topicArn,
      BACKUP_ACTIONS_POLICY: JSON.stringify(this.config.policy ?? DEFAULT_POLICY),
      BACKUP_ACTIONS_LOG_FORMAT: "json",
      NODE_OPTIONS: SERVICE_NODE_OPTIONS
    }
  }

  /** Adds one statement to a role: explicit actions (never `*`), the resources, optional conditions. */
  allow(role: iam.IRole, actions: ReadonlyArray<string>, resources: ReadonlyArray<string>, conditions?: Record<string, Record<string, unknown>>): void {
    role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: [...actions], resources: [...resources], ...(conditions === undefined ? {} : { conditions }) }))
  }

  /** Acknowledges AwsSolutions-IAM5 findings on a role's policy, each with the reason it is scoped as it is. */
  acknowledgeWildcards(role: iam.Role, findings: ReadonlyArray<{ readonly resource: string; readonly reason: string }>): void {
    for (const finding of findings) {
      Validations.of(role).acknowledge({ id: `AwsSolutions::AwsSolutions-IAM5[Resource::${finding.resource}]`, reason: finding.reason })
    }
  }

  /**
   * What every service may do: publish on the bus, keep its steps in the ledger, use the key,
   * take from its queue, and send to it and to its DLQ (the consumer runtime puts a deferred
   * duplicate back on its own queue, and dead-letters what it can never handle).
   */
  grantCommon(role: iam.IRole): void {
    this.allow(role, ["events:PutEvents"], [this.bus.eventBusArn])
    this.allow(
      role,
      ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Query", "dynamodb:ConditionCheckItem"],
      [this.ledger.tableArn]
    )
    // The outbox relay reads the ledger's index of finished steps whose event is unpublished.
    this.allow(role, ["dynamodb:Query"], [`${this.ledger.tableArn}/index/${LEDGER_OUTBOX_INDEX.name}`])
    this.allow(role, ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"], [this.delivery.queue.queueArn])
    this.allow(role, ["sqs:SendMessage"], [this.delivery.queue.queueArn, this.delivery.deadLetterQueue.queueArn])
    this.allow(role, ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"], [this.key.keyArn])
  }

  /** The service's schedules (libs/config SCHEDULES): EventBridge Scheduler sends each command to the queue. */
  addSchedules(): ReadonlyArray<scheduler.CfnSchedule> {
    const schedules = SCHEDULES.filter((schedule) => schedule.service === this.service)
    if (schedules.length === 0) return []
    const role = new iam.Role(this, "SchedulerRole", {
      assumedBy: new iam.ServicePrincipal("scheduler.amazonaws.com", { conditions: { StringEquals: { "aws:SourceAccount": this.config.account } } }),
      description: `EventBridge Scheduler sending the ${this.service}'s scheduled commands`
    })
    this.allow(role, ["sqs:SendMessage"], [this.delivery.queue.queueArn])
    this.allow(role, ["kms:GenerateDataKey", "kms:Decrypt"], [this.key.keyArn])
    return schedules.map(
      (schedule) =>
        new scheduler.CfnSchedule(this, `Schedule-${schedule.name}`, {
          name: `${this.config.prefix}-${schedule.name}`,
          description: `Sends "${schedule.command.detailType}" to the ${this.service}`,
          scheduleExpression: scheduleExpression(schedule.cadence),
          scheduleExpressionTimezone: "UTC",
          flexibleTimeWindow: { mode: "OFF" },
          target: {
            arn: this.delivery.queue.queueArn,
            roleArn: role.roleArn,
            input: scheduledCommandInput(schedule.command, schedule.detail, this.config.region),
            retryPolicy: { maximumRetryAttempts: 10, maximumEventAgeInSeconds: 3_600 }
          }
        })
    )
  }

  /** The core network and cluster, imported from the core stack's exports. */
  importCluster(): { readonly vpc: ec2.IVpc; readonly cluster: ecs.ICluster } {
    const exported = coreExports(this.config)
    const zones = networkZones(this.config)
    const vpc = ec2.Vpc.fromVpcAttributes(this, "Network", {
      vpcId: Fn.importValue(exported.vpcId),
      availabilityZones: [...zones],
      privateSubnetIds: Fn.split(",", Fn.importValue(exported.privateSubnetIds), zones.length)
    })
    const cluster = ecs.Cluster.fromClusterAttributes(this, "Cluster", { clusterName: this.config.prefix, vpc, securityGroups: [] })
    return { vpc, cluster }
  }

  /** The image of a service's process (main.ts), built from its bundle and the Dockerfile beside it in dist/. */
  serviceImage(): ecs.ContainerImage {
    return this.image ?? ecs.ContainerImage.fromAsset(join(workspaceRootForDeploy(), "dist", "apps", this.service))
  }

  /** The consumer's container: the same process as locally (main.ts polling the queue), JSON logs, the service environment. */
  addConsumerContainer(
    taskDefinition: ecs.TaskDefinition,
    options: { readonly image: ecs.ContainerImage; readonly memoryMiB: number; readonly privileged?: boolean }
  ): ecs.ContainerDefinition {
    const logGroup = new logs.LogGroup(this, "ConsumerLogs", { retention: logs.RetentionDays.THREE_MONTHS })
    const container = taskDefinition.addContainer("Consumer", {
      image: options.image,
      memoryLimitMiB: options.memoryMiB,
      environment: this.serviceEnvironment(),
      logging: ecs.LogDrivers.awsLogs({ streamPrefix: this.service, logGroup }),
      privileged: options.privileged ?? false,
      readonlyRootFilesystem: false,
      stopTimeout: Duration.seconds(120)
    })
    Validations.of(taskDefinition).acknowledge({
      id: "AwsSolutions::AwsSolutions-ECS2",
      reason: "The environment holds names (bus, bucket, table, queue URLs) and the policy, no secrets; secrets go to SSM SecureString."
    })
    return container
  }

  /** Scales a container consumer on its queue's depth: none when idle, more as messages wait. */
  scaleOnQueueDepth(service: ecs.BaseService, maxCapacity: number): void {
    service.autoScaleTaskCount({ minCapacity: 0, maxCapacity }).scaleOnMetric("QueueDepth", {
      ...this.queueDepthScaling(20),
      adjustmentType: appscaling.AdjustmentType.CHANGE_IN_CAPACITY
    })
  }

  /** The step scaling on queue depth that containers and instances share: one down when empty, up as messages wait. */
  queueDepthScaling(burstAt: number) {
    return {
      metric: this.delivery.queue.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(1), statistic: "Maximum" }),
      scalingSteps: [
        { upper: 0, change: -1 },
        { lower: 1, change: +1 },
        { lower: burstAt, change: +2 }
      ],
      cooldown: Duration.minutes(5)
    }
  }

  /** The service's queue consumer as a Fargate service: for work that outlasts a Lambda invocation. */
  addFargateConsumer(options: { readonly cpu: number; readonly memoryMiB: number; readonly maxTasks: number }): {
    readonly service: ecs.FargateService
    readonly role: iam.Role
    readonly container: ecs.ContainerDefinition
  } {
    const { vpc, cluster } = this.importCluster()
    const role = new iam.Role(this, "TaskRole", {
      assumedBy: new iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
      description: `The ${this.service} consumer: only what its handlers call`
    })
    const taskDefinition = new ecs.FargateTaskDefinition(this, "Task", {
      cpu: options.cpu,
      memoryLimitMiB: options.memoryMiB,
      taskRole: role,
      runtimePlatform: { cpuArchitecture: ecs.CpuArchitecture.X86_64, operatingSystemFamily: ecs.OperatingSystemFamily.LINUX }
    })
    const container = this.addConsumerContainer(taskDefinition, { image: this.serviceImage(), memoryMiB: options.memoryMiB })
    const securityGroup = new ec2.SecurityGroup(this, "TaskSecurityGroup", { vpc, description: `${this.service} tasks: outbound only`, allowAllOutbound: true })
    const service = new ecs.FargateService(this, "Service", {
      cluster,
      taskDefinition,
      desiredCount: 0,
      vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
      securityGroups: [securityGroup],
      assignPublicIp: false,
      minHealthyPercent: 0,
      circuitBreaker: { rollback: true }
    })
    this.scaleOnQueueDepth(service, options.maxTasks)
    this.grantCommon(role)
    this.acknowledgeExecutionRole(taskDefinition)
    return { service, role, container }
  }

  /** ECS's execution role pulls the image and writes logs; CDK grants the ECR token call on `*`, which has no resource. */
  acknowledgeExecutionRole(taskDefinition: ecs.TaskDefinition): void {
    const executionRole = taskDefinition.obtainExecutionRole()
    Validations.of(executionRole).acknowledge({
      id: "AwsSolutions::AwsSolutions-IAM5[Resource::*]",
      reason: "ecr:GetAuthorizationToken supports no resource-level permissions; image pulls are scoped to the asset repository."
    })
  }

  /**
   * The service's queue consumer as a Lambda function (bundled by esbuild from the app's
   * lambda.ts), fed by an SQS event source that hands back only the failed messages.
   */
  addLambdaConsumer(options: { readonly memoryMiB: number; readonly timeout: Duration; readonly batchSize: number }): {
    readonly consumer: nodejs.NodejsFunction
    readonly role: iam.Role
  } {
    const root = workspaceRootForDeploy()
    const logGroup = new logs.LogGroup(this, "ConsumerLogs", { retention: logs.RetentionDays.THREE_MONTHS })
    const role = new iam.Role(this, "ConsumerRole", {
      assumedBy: new iam.ServicePrincipal("lambda.amazonaws.com"),
      description: `The ${this.service} consumer: only what its handlers call`
    })
    this.allow(role, ["logs:CreateLogStream", "logs:PutLogEvents"], [logGroup.logGroupArn])
    const consumer = new nodejs.NodejsFunction(this, "Consumer", {
      entry: join(root, "apps", this.service, "src", "lambda.ts"),
      handler: "handler",
      projectRoot: root,
      depsLockFilePath: join(root, "package-lock.json"),
      runtime: lambda.Runtime.NODEJS_24_X,
      architecture: lambda.Architecture.ARM_64,
      memorySize: options.memoryMiB,
      timeout: options.timeout,
      role,
      logGroup,
      environment: this.serviceEnvironment(),
      bundling: {
        format: nodejs.OutputFormat.ESM,
        target: "node24",
        minify: true,
        sourceMap: true,
        banner: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);",
        // The SDK is bundled, so the deployed code runs the versions the tests ran.
        externalModules: []
      }
    })
    consumer.addEventSource(new SqsEventSource(this.delivery.queue, { batchSize: options.batchSize, reportBatchItemFailures: true }))
    this.grantCommon(role)
    return { consumer, role }
  }
}

/**
 * The body EventBridge Scheduler sends for a scheduled command: the contracts' command
 * envelope, with the schedule's execution id and time filled in when it fires.
 */
export const scheduledCommandInput = (command: Contract<string, string, unknown>, detail: unknown, region: string): string =>
  JSON.stringify(commandEnvelope(command, detail, { id: scheduler.ContextAttribute.executionId, time: scheduler.ContextAttribute.scheduledTime, region }))

/** Deletes are allowed only on resources carrying the project's security tag. */
export const taggedResourceCondition = (conditionKey: string) => ({
  StringEquals: { [conditionKey]: "true" }
})

/**
 * A service's CDK app (what `nx deploy <service>` runs): the deployment configuration, the
 * service's stack, and the AwsSolutions checks, whose unacknowledged findings fail the synthesis.
 */
export const runServiceCdkApp = (build: (app: App, config: DeployConfig) => Stack): void => {
  const config = loadDeployConfig(join(workspaceRootForDeploy(), "infra", "config", "example.json"))
  const app = new App({ context: deployContext(config) })
  build(app, config)
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }))
  app.synth()
}
