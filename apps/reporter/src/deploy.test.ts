import { Match } from "aws-cdk-lib/assertions"
import { assert, describe, it } from "@effect/vitest"
import { serviceStackProblems, statementsOf, synthesizeService, testDeployConfig } from "@backup-actions/deploy"
import { reporterStack } from "./deploy"

describe("the reporter's stack", () => {
  const { template, nag } = synthesizeService((app) => reporterStack(app, testDeployConfig()))

  it("subscribes to every outcome event with the contracts' patterns, with a DLQ, its alarm and no wildcard actions", () => {
    // Assess
    assert.deepStrictEqual(serviceStackProblems(template, "reporter"), [])
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

  it("passes the AwsSolutions checks with only acknowledged findings", () => {
    // Act and Assess
    assert.doesNotThrow(nag)
  })
})
