import { CfnOutput, Duration, RemovalPolicy, Stack, Tags, type StackProps } from "aws-cdk-lib"
import * as dynamodb from "aws-cdk-lib/aws-dynamodb"
import * as ec2 from "aws-cdk-lib/aws-ec2"
import * as ecs from "aws-cdk-lib/aws-ecs"
import * as events from "aws-cdk-lib/aws-events"
import * as targets from "aws-cdk-lib/aws-events-targets"
import * as iam from "aws-cdk-lib/aws-iam"
import * as kms from "aws-cdk-lib/aws-kms"
import * as s3 from "aws-cdk-lib/aws-s3"
import * as sns from "aws-cdk-lib/aws-sns"
import * as subscriptions from "aws-cdk-lib/aws-sns-subscriptions"
import * as ssm from "aws-cdk-lib/aws-ssm"
import type { Construct } from "constructs"
import { AWS_BACKUP_SOURCE } from "@backup-actions/contracts"
import { LEDGER_OUTBOX_INDEX } from "@backup-actions/config"
import { artifactLifecycleRules, coreExports, coreNames, coreStackName, keyArnParameterName, networkZones, type DeployConfig } from "@backup-actions/deploy"

export interface CoreStackProps extends StackProps {
  readonly config: DeployConfig
}

/**
 * What every service shares: the bus (with its archive and the rule that forwards AWS
 * Backup's events from the default bus), the ledger table, the artifact bucket, the topic for
 * notifications and alarms, and the key that encrypts them.
 */
export class CoreStack extends Stack {
  readonly key: kms.Key
  readonly bus: events.EventBus
  readonly ledger: dynamodb.Table
  readonly bucket: s3.Bucket
  readonly topic: sns.Topic
  readonly vpc: ec2.Vpc
  readonly cluster: ecs.Cluster

  constructor(scope: Construct, id: string, props: CoreStackProps) {
    const { config } = props
    super(scope, id, {
      ...props,
      stackName: coreStackName(config),
      env: { account: config.account, region: config.region },
      description: "backup-actions core: bus, archive, ledger, artifact bucket, topic, key"
    })
    const names = coreNames(config)
    for (const [key, value] of Object.entries(config.tags)) Tags.of(this).add(key, value)

    this.key = new kms.Key(this, "Key", {
      alias: names.keyAlias,
      description: "Encrypts the backup-actions bucket, ledger, queues and topic",
      enableKeyRotation: true,
      removalPolicy: RemovalPolicy.RETAIN
    })
    // EventBridge, SNS and CloudWatch alarms deliver into the encrypted queues and topic.
    for (const service of ["events.amazonaws.com", "sns.amazonaws.com", "cloudwatch.amazonaws.com"]) {
      this.key.grant(new iam.ServicePrincipal(service), "kms:Decrypt", "kms:GenerateDataKey*")
    }
    new ssm.StringParameter(this, "KeyArn", {
      parameterName: keyArnParameterName(config.prefix),
      stringValue: this.key.keyArn,
      description: "The backup-actions key, looked up by the service stacks"
    })

    this.bus = new events.EventBus(this, "Bus", { eventBusName: names.busName })
    this.bus.archive("Archive", {
      archiveName: names.archiveName,
      description: "Every event on the backup-actions bus, for replays",
      eventPattern: { account: [config.account] },
      retention: Duration.days(config.bus.archiveRetentionDays)
    })
    new events.Rule(this, "ForwardAwsBackup", {
      ruleName: names.forwardRuleName,
      description: "Forwards AWS Backup events from the default bus to the backup-actions bus",
      eventPattern: { source: [AWS_BACKUP_SOURCE] },
      targets: [new targets.EventBus(this.bus)]
    })

    this.ledger = new dynamodb.Table(this, "Ledger", {
      tableName: names.ledgerTable,
      partitionKey: { name: "pk", type: dynamodb.AttributeType.STRING },
      sortKey: { name: "sk", type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      encryption: dynamodb.TableEncryption.CUSTOMER_MANAGED,
      encryptionKey: this.key,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      removalPolicy: RemovalPolicy.RETAIN
    })
    // The outbox: finished steps whose outcome event is not on the bus yet.
    this.ledger.addGlobalSecondaryIndex({
      indexName: LEDGER_OUTBOX_INDEX.name,
      partitionKey: { name: LEDGER_OUTBOX_INDEX.partitionKey, type: dynamodb.AttributeType.STRING },
      sortKey: { name: LEDGER_OUTBOX_INDEX.sortKey, type: dynamodb.AttributeType.NUMBER },
      projectionType: dynamodb.ProjectionType.ALL
    })

    const accessLogs = config.bucket.accessLogs
      ? new s3.Bucket(this, "AccessLogs", {
          bucketName: names.accessLogBucket,
          encryption: s3.BucketEncryption.S3_MANAGED,
          blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
          enforceSSL: true,
          objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
          lifecycleRules: [{ expiration: Duration.days(365) }],
          removalPolicy: RemovalPolicy.RETAIN
        })
      : undefined
    this.bucket = new s3.Bucket(this, "Artifacts", {
      bucketName: names.artifactBucket,
      encryption: s3.BucketEncryption.KMS,
      encryptionKey: this.key,
      bucketKeyEnabled: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      versioned: config.bucket.versioned || config.bucket.objectLock !== undefined,
      ...(config.bucket.objectLock === undefined
        ? {}
        : {
            objectLockEnabled: true,
            objectLockDefaultRetention:
              config.bucket.objectLock.mode === "COMPLIANCE"
                ? s3.ObjectLockRetention.compliance(Duration.days(config.bucket.objectLock.days))
                : s3.ObjectLockRetention.governance(Duration.days(config.bucket.objectLock.days))
          }),
      ...(accessLogs === undefined ? {} : { serverAccessLogsBucket: accessLogs, serverAccessLogsPrefix: "artifacts/" }),
      // Only archives move to cold storage, never their manifests (see artifactLifecycleRules).
      lifecycleRules: artifactLifecycleRules(config.bucket.lifecycle),
      removalPolicy: RemovalPolicy.RETAIN
    })

    this.topic = new sns.Topic(this, "Notifications", {
      topicName: names.notificationTopic,
      displayName: "backup-actions notifications",
      masterKey: this.key,
      enforceSSL: true
    })
    if (config.alarmEmail !== undefined) this.topic.addSubscription(new subscriptions.EmailSubscription(config.alarmEmail))

    // The network and cluster of the long-running consumers (the streamer's instances, Fargate
    // tasks): private subnets whose only way out is one NAT gateway, with gateway endpoints so
    // that the bulk of the traffic (S3, DynamoDB) never crosses it.
    this.vpc = new ec2.Vpc(this, "Network", {
      availabilityZones: [...networkZones(config)],
      natGateways: 1,
      subnetConfiguration: [
        { name: "public", subnetType: ec2.SubnetType.PUBLIC, cidrMask: 24 },
        { name: "private", subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS, cidrMask: 20 }
      ],
      gatewayEndpoints: { S3: { service: ec2.GatewayVpcEndpointAwsService.S3 }, DynamoDB: { service: ec2.GatewayVpcEndpointAwsService.DYNAMODB } },
      flowLogs: { all: { trafficType: ec2.FlowLogTrafficType.REJECT } }
    })
    this.cluster = new ecs.Cluster(this, "Cluster", {
      clusterName: `${config.prefix}`,
      vpc: this.vpc,
      containerInsightsV2: ecs.ContainerInsights.ENABLED
    })
    const exported = coreExports(config)
    new CfnOutput(this, "VpcId", { value: this.vpc.vpcId, exportName: exported.vpcId })
    new CfnOutput(this, "PrivateSubnets", {
      value: this.vpc.privateSubnets.map((subnet) => subnet.subnetId).join(","),
      exportName: exported.privateSubnetIds
    })
  }
}
