import { Match } from "aws-cdk-lib/assertions"
import { assert, describe, it } from "@effect/vitest"
import { serviceStackProblems, statementsOf, synthesizeService, testDeployConfig } from "@backup-actions/deploy"
import { restorerStack } from "./deploy"

describe("the restorer's stack", () => {
  const { template, nag } = synthesizeService((app) => restorerStack(app, testDeployConfig()))

  it("subscribes with the contracts' patterns, dead-letters after five receives and alarms on the DLQ, with no wildcard actions", () => {
    // Assess
    assert.deepStrictEqual(serviceStackProblems(template, "restorer"), [])
  })

  it("runs as a Lambda function on Node.js 24 fed by its queue, restoring into the streamer's zone", () => {
    // Assess
    template.hasResourceProperties("AWS::Lambda::Function", {
      Runtime: "nodejs24.x",
      Environment: { Variables: Match.objectLike({ BACKUP_ACTIONS_AVAILABILITY_ZONE: "eu-west-1a", NODE_OPTIONS: Match.stringLikeRegexp("--max-old-space-size=128") }) }
    })
    template.hasResourceProperties("AWS::Lambda::EventSourceMapping", { FunctionResponseTypes: ["ReportBatchItemFailures"] })
  })

  it("creates volumes only with the project's tag and deletes only volumes that carry it", () => {
    // Prepare
    const statements = statementsOf(template)
    const conditionOf = (action: string) => statements.filter((statement) => [statement.Action].flat().includes(action)).map((statement) => statement.Condition)
    // Assess
    assert.deepStrictEqual(conditionOf("ec2:DeleteVolume"), [{ StringEquals: { "ec2:ResourceTag/backup-actions:managed": "true" } }])
    assert.deepInclude(conditionOf("ec2:CreateVolume"), { StringEquals: { "aws:RequestTag/backup-actions:managed": "true" } })
  })

  it("sends itself the scheduled sweep of leftovers through EventBridge Scheduler", () => {
    // Assess
    template.hasResourceProperties("AWS::Scheduler::Schedule", {
      ScheduleExpression: "rate(60 minutes)",
      Target: Match.objectLike({ Input: Match.stringLikeRegexp('"detail-type":"Sweep Due"') })
    })
  })

  it("passes the AwsSolutions checks with only acknowledged findings", () => {
    // Act and Assess
    assert.doesNotThrow(nag)
  })
})
