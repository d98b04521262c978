import { CreateBucketCommand } from "@aws-sdk/client-s3"
import { CreateTableCommand } from "@aws-sdk/client-dynamodb"
import {
  CreateArchiveCommand,
  CreateEventBusCommand,
  DescribeEventBusCommand,
  PutRuleCommand,
  PutTargetsCommand
} from "@aws-sdk/client-eventbridge"
import { CreateQueueCommand, GetQueueAttributesCommand } from "@aws-sdk/client-sqs"
import { CreateTopicCommand } from "@aws-sdk/client-sns"
import { Effect, Schema } from "effect"
import { DynamoDb, EventBridge, S3, Sns, Sqs, awsCall, type AwsError } from "@backup-actions/aws"
import type { EventPattern } from "@backup-actions/contracts"
import { AWS_BACKUP_SOURCE } from "@backup-actions/contracts"
import { LEDGER_OUTBOX_INDEX, MAX_RECEIVE_COUNT, type ServiceName, type Topology } from "@backup-actions/config"

/** A service as provisioning sees it: its name and the patterns it subscribes to. */
export interface ServiceTopology {
  readonly name: ServiceName
  readonly patterns: ReadonlyArray<EventPattern>
  /** How long a received message stays hidden before another consumer may take it. */
  readonly visibilityTimeoutSeconds?: number
}

export interface ProvisionedQueue {
  readonly url: string
  readonly arn: string
  readonly deadLetterUrl: string
  readonly deadLetterArn: string
}

/** Everything provisioning made; written to a JSON file so that the AWS CLI can find it. */
export interface ProvisionedStack {
  readonly region: string
  readonly busName: string
  readonly busArn: string
  readonly archiveName: string
  readonly artifactBucket: string
  readonly ledgerTable: string
  readonly notificationTopicArn: string
  readonly queues: Readonly<Partial<Record<ServiceName, ProvisionedQueue>>>
  /**
   * Local only: where the default bus's forward rule delivers AWS Backup events, for the
   * forwarding leg (backup-forwarding.ts) to put them on the bus with `resources[]` intact.
   */
  readonly backupEventsQueue: ProvisionedQueue
}

/** The local forwarding leg's queue and DLQ, named after the forward rule they stand in for. */
export const backupEventsQueueName = (names: Topology): string => names.forwardRuleName


const alreadyThere = (error: AwsError): boolean =>
  /AlreadyExists|AlreadyOwnedByYou|ResourceInUse|ResourceAlreadyExists/.test(error.code)

const ignoreExisting = <A>(effect: Effect.Effect<A, AwsError>) =>
  Effect.asVoid(effect).pipe(Effect.catchIf(alreadyThere, () => Effect.void))

/** The emulator answered GetQueueAttributes without the queue's ARN, which rules and redrive policies need. */
export class QueueArnMissing extends Schema.TaggedError<QueueArnMissing>()("QueueArnMissing", {
  queueUrl: Schema.String
}) {
  override get message(): string {
    return `GetQueueAttributes gave no ARN for ${this.queueUrl}`
  }
}

const queueArn = (url: string) =>
  Effect.gen(function* () {
    const sqs = yield* Sqs
    const attributes = yield* awsCall("sqs:GetQueueAttributes", (abortSignal) =>
      sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ["QueueArn"] }), { abortSignal })
    )
    const arn = attributes.Attributes?.QueueArn
    if (arn === undefined) return yield* new QueueArnMissing({ queueUrl: url })
    return arn
  })

const createQueue = (name: string, attributes: Record<string, string>) =>
  Effect.gen(function* () {
    const sqs = yield* Sqs
    const created = yield* awsCall("sqs:CreateQueue", (abortSignal) =>
      sqs.send(new CreateQueueCommand({ QueueName: name, Attributes: attributes }), { abortSignal })
    )
    const url = created.QueueUrl ?? ""
    return { url, arn: yield* queueArn(url) }
  })

/**
 * Creates the same topology that the CDK stacks deploy: the bus, the rule that forwards
 * AWS Backup events from the default bus, an archive of every bus event, and per service
 * its queue with a DLQ and one rule per subscribed pattern; the artifact bucket; the ledger.
 * One stand-in: the emulator drops `resources[]` from an event a rule sends to another bus,
 * so here the forward rule delivers to a queue, from which the local runtime's forwarding
 * leg (`startBackupForwarding`) puts each event on the bus as AWS would.
 */
export const provision = (names: Topology, region: string, services: ReadonlyArray<ServiceTopology>) =>
  Effect.gen(function* () {
    const events = yield* EventBridge
    const s3 = yield* S3
    const dynamodb = yield* DynamoDb

    yield* ignoreExisting(
      awsCall("events:CreateEventBus", (abortSignal) => events.send(new CreateEventBusCommand({ Name: names.busName }), { abortSignal }))
    )
    const bus = yield* awsCall("events:DescribeEventBus", (abortSignal) =>
      events.send(new DescribeEventBusCommand({ Name: names.busName }), { abortSignal })
    )
    const busArn = bus.Arn ?? ""

    const forwardDeadLetter = yield* createQueue(`${backupEventsQueueName(names)}-dlq`, { MessageRetentionPeriod: "1209600" })
    const forwardQueue = yield* createQueue(backupEventsQueueName(names), {
      VisibilityTimeout: "10",
      RedrivePolicy: JSON.stringify({ deadLetterTargetArn: forwardDeadLetter.arn, maxReceiveCount: MAX_RECEIVE_COUNT })
    })
    yield* awsCall("events:PutRule", (abortSignal) =>
      events.send(
        new PutRuleCommand({
          Name: names.forwardRuleName,
          EventBusName: "default",
          EventPattern: JSON.stringify({ source: [AWS_BACKUP_SOURCE] }),
          Description: "Forwards AWS Backup events to the backup-actions bus (locally through a queue and the forwarding leg)"
        }),
        { abortSignal }
      )
    )
    yield* awsCall("events:PutTargets", (abortSignal) =>
      events.send(
        new PutTargetsCommand({
          Rule: names.forwardRuleName,
          EventBusName: "default",
          Targets: [{ Id: "local-forwarding-leg", Arn: forwardQueue.arn }]
        }),
        { abortSignal }
      )
    )
    yield* ignoreExisting(
      awsCall("events:CreateArchive", (abortSignal) =>
        events.send(
          new CreateArchiveCommand({ ArchiveName: names.archiveName, EventSourceArn: busArn, Description: "Every event on the backup-actions bus" }),
          { abortSignal }
        )
      )
    )

    const queues = yield* Effect.forEach(services, (service) =>
      Effect.gen(function* () {
        const deadLetter = yield* createQueue(names.deadLetterQueueName(service.name), { MessageRetentionPeriod: "1209600" })
        const queue = yield* createQueue(names.queueName(service.name), {
          VisibilityTimeout: String(service.visibilityTimeoutSeconds ?? 120),
          RedrivePolicy: JSON.stringify({ deadLetterTargetArn: deadLetter.arn, maxReceiveCount: MAX_RECEIVE_COUNT })
        })
        yield* Effect.forEach(service.patterns, (pattern) =>
          Effect.gen(function* () {
            const ruleName = names.ruleName(service.name, pattern["detail-type"].join(" "))
            yield* awsCall("events:PutRule", (abortSignal) =>
              events.send(new PutRuleCommand({ Name: ruleName, EventBusName: names.busName, EventPattern: JSON.stringify(pattern) }), { abortSignal })
            )
            yield* awsCall("events:PutTargets", (abortSignal) =>
              events.send(
                new PutTargetsCommand({ Rule: ruleName, EventBusName: names.busName, Targets: [{ Id: `${service.name}-queue`, Arn: queue.arn }] }),
                { abortSignal }
              )
            )
          })
        )
        const provisioned: ProvisionedQueue = { url: queue.url, arn: queue.arn, deadLetterUrl: deadLetter.url, deadLetterArn: deadLetter.arn }
        return [service.name, provisioned] as const
      })
    )

    yield* ignoreExisting(
      awsCall("s3:CreateBucket", (abortSignal) => s3.send(new CreateBucketCommand({ Bucket: names.artifactBucket }), { abortSignal }))
    )
    yield* ignoreExisting(
      awsCall("dynamodb:CreateTable", (abortSignal) =>
        dynamodb.send(
          new CreateTableCommand({
            TableName: names.ledgerTable,
            BillingMode: "PAY_PER_REQUEST",
            AttributeDefinitions: [
              { AttributeName: "pk", AttributeType: "S" },
              { AttributeName: "sk", AttributeType: "S" },
              { AttributeName: LEDGER_OUTBOX_INDEX.partitionKey, AttributeType: "S" },
              { AttributeName: LEDGER_OUTBOX_INDEX.sortKey, AttributeType: "N" }
            ],
            KeySchema: [
              { AttributeName: "pk", KeyType: "HASH" },
              { AttributeName: "sk", KeyType: "RANGE" }
            ],
            GlobalSecondaryIndexes: [
              {
                IndexName: LEDGER_OUTBOX_INDEX.name,
                KeySchema: [
                  { AttributeName: LEDGER_OUTBOX_INDEX.partitionKey, KeyType: "HASH" },
                  { AttributeName: LEDGER_OUTBOX_INDEX.sortKey, KeyType: "RANGE" }
                ],
                Projection: { ProjectionType: "ALL" }
              }
            ]
          }),
          { abortSignal }
        )
      )
    )

    const sns = yield* Sns
    const topic = yield* awsCall("sns:CreateTopic", (abortSignal) =>
      sns.send(new CreateTopicCommand({ Name: names.notificationTopic }), { abortSignal })
    )

    const stack: ProvisionedStack = {
      region,
      busName: names.busName,
      busArn,
      archiveName: names.archiveName,
      artifactBucket: names.artifactBucket,
      ledgerTable: names.ledgerTable,
      notificationTopicArn: topic.TopicArn ?? "",
      queues: Object.fromEntries(queues),
      backupEventsQueue: { url: forwardQueue.url, arn: forwardQueue.arn, deadLetterUrl: forwardDeadLetter.url, deadLetterArn: forwardDeadLetter.arn }
    }
    return stack
  })
