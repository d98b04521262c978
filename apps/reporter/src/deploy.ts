import { Duration } from "aws-cdk-lib"
import type { Construct } from "constructs"
import { ServiceStack, type DeployConfig, type ServiceOverrides } from "@backup-actions/deploy"

/**
 * The reporter: a Lambda consumer of every outcome event and of AWS Backup's job events in
 * their end states (forwarded from the default bus like every AWS Backup event), which writes
 * reports under `reports/` in the artifact bucket, announces failures and digests on the topic, and sends
 * itself the delayed "Report Due" (its own queue, as every service may); the daily digest
 * comes from EventBridge Scheduler.
 */
export const reporterStack = (scope: Construct, config: DeployConfig, overrides: ServiceOverrides = {}): ServiceStack => {
  const stack = new ServiceStack(scope, "Reporter", { config, service: "reporter", visibilityTimeout: Duration.minutes(6), ...overrides })
  const { role } = stack.addLambdaConsumer({ memoryMiB: 512, timeout: Duration.minutes(5), batchSize: 10 })
  stack.allow(role, ["sns:Publish"], [stack.topic.topicArn])
  stack.allow(role, ["s3:PutObject"], [stack.bucket.arnForObjects("reports/*")])
  stack.allow(role, ["dynamodb:Query"], [stack.ledger.tableArn])
  stack.acknowledgeWildcards(role, [
    { resource: `arn:<AWS::Partition>:s3:::${stack.names.artifactBucket}/reports/*`, reason: "The reporter writes report files, and only under reports/." }
  ])
  stack.addSchedules()
  return stack
}
