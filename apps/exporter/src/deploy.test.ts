import { Match } from "aws-cdk-lib/assertions"
import { assert, describe, it } from "@effect/vitest"
import { iamCoverageProblems, ownershipTagProblems, serviceStackProblems, statementsOf, synthesizeService, testDeployConfig, testImage } from "@backup-actions/deploy/testing"
import { exporterStack } from "./deploy"

describe("the exporter's stack", () => {
  const { stack, template, nag } = synthesizeService((app) => exporterStack(app, testDeployConfig(), { image: testImage() }))

  it("subscribes with the contracts' patterns, with a DLQ, its alarm and no wildcard actions", () => {
    // Assess
    assert.deepStrictEqual(serviceStackProblems(template, "exporter"), [])
  })

  it("runs on Fargate, scaled on the queue's depth down to no task", () => {
    // Assess
    template.hasResourceProperties("AWS::ECS::Service", { LaunchType: "FARGATE", DesiredCount: 0 })
    template.hasResourceProperties("AWS::ApplicationAutoScaling::ScalableTarget", { MinCapacity: 0, MaxCapacity: 2 })
  })

  it("passes to RDS only the export role the policy names, and only for exports", () => {
    // Prepare
    const passRole = statementsOf(template).filter((statement) => [statement.Action].flat().includes("iam:PassRole"))
    // Assess
    assert.strictEqual(passRole.length, 1)
    assert.match(JSON.stringify(passRole[0]), /role\/rds-export/)
    assert.deepStrictEqual(passRole[0]?.Condition, { StringEquals: { "iam:PassedToService": "export.rds.amazonaws.com" } })
  })

  it("gets the daily sweep of old AMIs from EventBridge Scheduler", () => {
    // Assess
    template.hasResourceProperties("AWS::Scheduler::Schedule", { Target: Match.objectLike({ Input: Match.stringLikeRegexp('"detail-type":"AMI Sweep Due"') }) })
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
