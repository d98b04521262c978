import { Duration } from "aws-cdk-lib"
import * as cloudwatch from "aws-cdk-lib/aws-cloudwatch"
import * as cloudwatchActions from "aws-cdk-lib/aws-cloudwatch-actions"
import * as events from "aws-cdk-lib/aws-events"
import * as targets from "aws-cdk-lib/aws-events-targets"
import type * as kms from "aws-cdk-lib/aws-kms"
import type * as sns from "aws-cdk-lib/aws-sns"
import * as sqs from "aws-cdk-lib/aws-sqs"
import { Construct } from "constructs"
import { MAX_RECEIVE_COUNT } from "@backup-actions/config"
import type { EventPattern } from "@backup-actions/contracts"


/** Our contract's pattern in CDK's shape: the same source, detail-type and detail filter. */
export const toCdkPattern = (pattern: EventPattern): events.EventPattern => ({
  source: [...pattern.source],
  detailType: [...pattern["detail-type"]],
  ...(pattern.detail === undefined ? {} : { detail: Object.fromEntries(Object.entries(pattern.detail).map(([field, values]) => [field, [...values]])) })
})

export interface ServiceQueueProps {
  readonly service: string
  readonly queueName: string
  readonly deadLetterQueueName: string
  readonly bus: events.IEventBus
  readonly patterns: ReadonlyArray<EventPattern>
  readonly ruleName: (detailType: string) => string
  readonly visibilityTimeout: Duration
  readonly key: kms.IKey
  readonly alarmTopic: sns.ITopic
}

/**
 * A service's delivery: one rule per subscribed pattern on the bus -> its queue (KMS
 * encrypted, TLS only) -> a DLQ after five receives, and an alarm as soon as the DLQ holds a message.
 */
export class ServiceQueue extends Construct {
  readonly queue: sqs.Queue
  readonly deadLetterQueue: sqs.Queue
  readonly rules: ReadonlyArray<events.Rule>
  readonly deadLetterAlarm: cloudwatch.Alarm

  constructor(scope: Construct, id: string, props: ServiceQueueProps) {
    super(scope, id)
    this.deadLetterQueue = new sqs.Queue(this, "DeadLetterQueue", {
      queueName: props.deadLetterQueueName,
      retentionPeriod: Duration.days(14),
      encryption: sqs.QueueEncryption.KMS,
      encryptionMasterKey: props.key,
      enforceSSL: true
    })
    this.queue = new sqs.Queue(this, "Queue", {
      queueName: props.queueName,
      visibilityTimeout: props.visibilityTimeout,
      encryption: sqs.QueueEncryption.KMS,
      encryptionMasterKey: props.key,
      enforceSSL: true,
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: MAX_RECEIVE_COUNT }
    })
    this.rules = props.patterns.map(
      (pattern, index) =>
        new events.Rule(this, `Rule${index}`, {
          ruleName: props.ruleName(pattern["detail-type"].join(" ")),
          eventBus: props.bus,
          eventPattern: toCdkPattern(pattern),
          targets: [new targets.SqsQueue(this.queue)]
        })
    )
    this.deadLetterAlarm = new cloudwatch.Alarm(this, "DeadLetterAlarm", {
      alarmName: `${props.deadLetterQueueName}-not-empty`,
      alarmDescription: `Messages the ${props.service} could not handle are waiting in ${props.deadLetterQueueName}; each carries its reason.`,
      metric: this.deadLetterQueue.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(1), statistic: "Maximum" }),
      threshold: 0,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING
    })
    this.deadLetterAlarm.addAlarmAction(new cloudwatchActions.SnsAction(props.alarmTopic))
  }
}
