import { Match } from "aws-cdk-lib/assertions"
import { assert, describe, it } from "@effect/vitest"
import { iamCoverageProblems, ownershipTagProblems, serviceStackProblems, statementsOf, synthesizeService, testDeployConfig } from "@backup-actions/deploy/testing"
import { reporterStack } from "./deploy"

describe("the reporter's stack", () => {
  const { stack, template, nag } = synthesizeService((app) => reporterStack(app, testDeployConfig()))

  it("subscribes to every outcome event with the contracts' patterns, with a DLQ, its alarm and no wildcard actions", () => {
    // Assess
    assert.deepStrictEqual(serviceStackProblems(template, "reporter"), [])
  })

  it("takes AWS Backup's backup, copy and restore job events in their end states only", () => {
    // Prepare
    const endStates = ["COMPLETED", "FAILED", "ABORTED", "EXPIRED", "PARTIAL"]
    // Assess
    for (const [detailType, field] of [
      ["Backup Job State Change", "state"],
      ["Copy Job State Change", "state"],
      ["Restore Job State Change", "status"]
    ] as const) {
      template.hasResourceProperties("AWS::Events::Rule", {
        EventPattern: { source: ["aws.backup"], "detail-type": [detailType], detail: { [field]: endStates } }
      })
    }
  })

  it("may publish notifications and write only under reports/", () => {
    // Prepare
    const statements = statementsOf(template)
    const puts = statements.filter((statement) => [statement.Action].flat().includes("s3:PutObject"))
    // Assess
    assert.strictEqual(puts.length, 1)
    assert.match(JSON.stringify(puts), /reports\/\*/)
    assert.isTrue(statements.some((statement) => [statement.Action].flat().includes("sns:Publish")))
  })

  it("gets the daily digest from EventBridge Scheduler at 00:05 UTC", () => {
    // Assess
    template.hasResourceProperties("AWS::Scheduler::Schedule", {
      ScheduleExpression: "cron(5 0 * * ? *)",
      ScheduleExpressionTimezone: "UTC",
      Target: Match.objectLike({ Input: Match.stringLikeRegexp('"detail-type":"Digest Due"') })
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
