import { Match } from "aws-cdk-lib/assertions"
import { assert, describe, it } from "@effect/vitest"
import { serviceStackProblems, statementsOf, synthesizeService, testDeployConfig, testImage } from "@backup-actions/deploy"
import { restorerStack } from "./deploy"

describe("the restorer's stack", () => {
  const { template, nag } = synthesizeService((app) => restorerStack(app, testDeployConfig(), { image: testImage() }))

  it("subscribes with the contracts' patterns, dead-letters after five receives and alarms on the DLQ, with no wildcard actions", () => {
    // Assess
    assert.deepStrictEqual(serviceStackProblems(template, "restorer"), [])
  })

  it("runs on Fargate (a DB restore outlasts a Lambda invocation), restoring into the streamer's zone", () => {
    // Assess
    template.hasResourceProperties("AWS::ECS::Service", { LaunchType: "FARGATE" })
    template.hasResourceProperties("AWS::ECS::TaskDefinition", {
      ContainerDefinitions: [
        Match.objectLike({
          Environment: Match.arrayWith([
            { Name: "NODE_OPTIONS", Value: Match.stringLikeRegexp("--max-old-space-size=128") },
            { Name: "BACKUP_ACTIONS_AVAILABILITY_ZONE", Value: "eu-west-1a" }
          ])
        })
      ]
    })
  })

  it("keeps restored DB passwords under its own SSM path and deletes only the instances it tagged", () => {
    // Prepare
    const statements = statementsOf(template)
    const withAction = (action: string) => statements.filter((statement) => [statement.Action].flat().includes(action))
    // Assess
    assert.match(JSON.stringify(withAction("ssm:PutParameter")), /parameter\/backup-actions\/restored\/\*/)
    assert.deepStrictEqual(withAction("rds:DeleteDBInstance")[0]?.Condition, { StringEquals: { "aws:ResourceTag/backup-actions:managed": "true" } })
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
