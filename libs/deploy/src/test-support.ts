import { App, Validations, type Stack } from "aws-cdk-lib"
import { Match, Template } from "aws-cdk-lib/assertions"
import * as ecs from "aws-cdk-lib/aws-ecs"
import { AwsSolutionsChecks } from "cdk-nag"
import { patternsFor, type ServiceName } from "@backup-actions/config"
import { parseDeployConfig, type DeployConfig } from "./deploy-config"
import { MANAGED_TAG_KEY } from "./core-names"
import { MAX_RECEIVE_COUNT } from "@backup-actions/config"

/** A deployment configuration for the stacks' tests: one rule of each kind of action. */
export const testDeployConfig = (overrides: Record<string, unknown> = {}): DeployConfig => {
  const parsed = parseDeployConfig(
    JSON.stringify({
      account: "111122223333",
      region: "eu-west-1",
      destinations: [{ account: "444455556666", region: "eu-central-1", roleArn: "arn:aws:iam::444455556666:role/backup-actions-dr" }],
      policy: {
        rules: [
          { name: "ebs", match: { resourceTypes: ["EBS"] }, archive: { mode: "volume" } },
          {
            name: "rds",
            match: { resourceTypes: ["RDS"] },
            export: { mode: "native", kmsKeyId: "arn:aws:kms:eu-west-1:111122223333:key/export", iamRoleArn: "arn:aws:iam::111122223333:role/rds-export" }
          },
          { name: "dynamodb", match: { resourceTypes: ["DynamoDB"] }, export: { mode: "parquet" } }
        ]
      },
      ...overrides
    }),
    "test configuration"
  )
  if (parsed._tag === "Left") throw parsed.left
  return parsed.right
}

/** A stand-in image, so that tests need no bundle in dist/. */
export const testImage = (): ecs.ContainerImage => ecs.ContainerImage.fromRegistry("public.ecr.aws/docker/library/node:24-bookworm-slim")

/** Synthesizes one service's stack (given back too, for checks that resolve its tokens) and, in `nag`, with the AwsSolutions checks; a finding nobody acknowledged throws. */
export const synthesizeService = <S extends Stack>(build: (app: App) => S): { readonly stack: S; readonly template: Template; readonly nag: () => void } => {
  const stack = build(new App())
  return {
    stack,
    template: Template.fromStack(stack),
    nag: () => {
      const app = new App()
      build(app)
      Validations.of(app).addPlugins(new AwsSolutionsChecks(app))
      app.synth()
    }
  }
}

type Statement = { readonly Action: string | ReadonlyArray<string>; readonly Condition?: Record<string, Record<string, unknown>> }

/** Every IAM statement of the template. */
export const statementsOf = (template: Template): ReadonlyArray<Statement> =>
  Object.values(template.findResources("AWS::IAM::Policy")).flatMap(
    (policy) => policy["Properties"]["PolicyDocument"]["Statement"] as ReadonlyArray<Statement>
  )

const actionsOf = (statement: Statement): ReadonlyArray<string> => (typeof statement.Action === "string" ? [statement.Action] : statement.Action)

/**
 * What holds for every service stack: a rule per subscribed pattern with exactly the
 * contract's pattern, the queue's redrive to its DLQ, an alarm on the DLQ, no `*` in any
 * action, and deletes only under a tag condition. Returns the problems found.
 */
export const serviceStackProblems = (template: Template, service: ServiceName): ReadonlyArray<string> => {
  const problems: Array<string> = []
  const rules = Object.values(template.findResources("AWS::Events::Rule")).map((rule) => JSON.stringify(rule["Properties"]["EventPattern"]))
  for (const pattern of patternsFor(service)) {
    if (!rules.includes(JSON.stringify(pattern))) problems.push(`no rule with the contract's pattern ${JSON.stringify(pattern)}`)
  }
  if (rules.length !== patternsFor(service).length) problems.push(`${rules.length} rules for ${patternsFor(service).length} patterns`)
  const redriven = template.findResources("AWS::SQS::Queue", {
    Properties: { RedrivePolicy: { maxReceiveCount: MAX_RECEIVE_COUNT, deadLetterTargetArn: Match.anyValue() } }
  })
  if (Object.keys(redriven).length !== 1) problems.push("the queue has no redrive policy to its DLQ")
  const alarms = template.findResources("AWS::CloudWatch::Alarm", {
    Properties: { MetricName: "ApproximateNumberOfMessagesVisible", Namespace: "AWS/SQS", Threshold: 0, ComparisonOperator: "GreaterThanThreshold" }
  })
  if (Object.keys(alarms).length !== 1) problems.push("no alarm on the DLQ's depth")
  for (const statement of statementsOf(template)) {
    for (const action of actionsOf(statement)) {
      if (action.includes("*")) problems.push(`wildcard action ${action}`)
      // Deleting resources, not items of the temporary tables the exporter restores into.
      const deletes = /^(ec2|rds|dynamodb|backup):(Delete(?!Item)|Deregister)/.test(action)
      if (deletes && !JSON.stringify(statement.Condition ?? {}).includes(`ResourceTag/${MANAGED_TAG_KEY}`) && !JSON.stringify(statement.Condition ?? {}).includes("backup-actions:")) {
        problems.push(`${action} without a tag condition`)
      }
    }
  }
  return problems
}
