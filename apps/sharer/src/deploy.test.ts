import { Match } from "aws-cdk-lib/assertions"
import { assert, describe, it } from "@effect/vitest"
import { serviceStackProblems, statementsOf, synthesizeService, testDeployConfig, testImage } from "@backup-actions/deploy"
import { sharerStack } from "./deploy"

describe("the sharer's stack", () => {
  const { template, nag } = synthesizeService((app) => sharerStack(app, testDeployConfig(), { image: testImage() }))

  it("subscribes with the contracts' patterns, with a DLQ, its alarm and no wildcard actions", () => {
    // Assess
    assert.deepStrictEqual(serviceStackProblems(template, "sharer"), [])
  })

  it("assumes only the configured destination roles and deletes only the replicas it tagged", () => {
    // Prepare
    const statements = statementsOf(template)
    const withAction = (action: string) => statements.filter((statement) => [statement.Action].flat().includes(action))
    // Assess
    assert.match(JSON.stringify(withAction("sts:AssumeRole")), /arn:aws:iam::444455556666:role\/backup-actions-dr/)
    assert.deepStrictEqual(withAction("ec2:DeleteSnapshot")[0]?.Condition, { StringEquals: { "ec2:ResourceTag/backup-actions:managed-by": "sharer" } })
    assert.deepStrictEqual(withAction("ec2:ModifySnapshotAttribute")[0]?.Condition, { StringEquals: { "ec2:ResourceTag/backup-actions:managed": "true" } })
  })

  it("gets the catch-up of missed replicas from EventBridge Scheduler", () => {
    // Assess
    template.hasResourceProperties("AWS::Scheduler::Schedule", { Target: Match.objectLike({ Input: Match.stringLikeRegexp('"detail-type":"Replica Catch-Up Due"') }) })
  })

  it("passes the AwsSolutions checks with only acknowledged findings", () => {
    // Act and Assess
    assert.doesNotThrow(nag)
  })
})
