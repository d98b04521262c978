import { Match } from "aws-cdk-lib/assertions"
import { assert, describe, it } from "@effect/vitest"
import { iamCoverageProblems, ownershipTagProblems, serviceStackProblems, statementsOf, synthesizeService, testDeployConfig, testImage } from "@backup-actions/deploy/testing"
import { dumpInstanceId } from "./db-instances"
import { DUMP_INSTANCE_PREFIX, restorerStack } from "./deploy"

describe("the restorer's stack", () => {
  const { stack, template, nag } = synthesizeService((app) => restorerStack(app, testDeployConfig(), { image: testImage() }))

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

  it("restores, tags and deletes DB instances only under the names it gives them", () => {
    // Prepare
    const statements = statementsOf(template)
    const withAction = (action: string) => statements.filter((statement) => [statement.Action].flat().includes(action))
    // Act
    const name = dumpInstanceId("arn:aws:rds:eu-west-1:111122223333:snapshot:awsbackup:job-1")
    // Assess
    assert.isTrue(name.startsWith(DUMP_INSTANCE_PREFIX))
    for (const action of ["rds:AddTagsToResource", "rds:DeleteDBInstance", "rds:ModifyDBInstance"]) {
      assert.match(JSON.stringify(withAction(action)), new RegExp(`:db:${DUMP_INSTANCE_PREFIX}\\*"`))
      assert.notMatch(JSON.stringify(withAction(action)), /:db:\*"/)
    }
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

  it("allows every AWS call its runtime can make, sends to its own queue and DLQ included", () => {
    // Act
    const problems = iamCoverageProblems(stack, { template })
    // Assess
    assert.deepStrictEqual(problems, [])
  })

  it("lets no role put the ownership tag on an existing resource that the tag would make deletable", () => {
    // Assess
    assert.deepStrictEqual(ownershipTagProblems(template), [])
  })

  it("passes the AwsSolutions checks with only acknowledged findings", () => {
    // Act and Assess
    assert.doesNotThrow(nag)
  })
})
