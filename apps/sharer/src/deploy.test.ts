import { Match } from "aws-cdk-lib/assertions"
import { assert, describe, it } from "@effect/vitest"
import { iamCoverageProblems, ownershipTagProblems, serviceStackProblems, statementsOf, synthesizeService, testDeployConfig, testImage } from "@backup-actions/deploy/testing"
import { REPLICA_SNAPSHOT_PREFIX, sharerStack } from "./deploy"
import { dbSnapshotIdentifier } from "./rds"

describe("the sharer's stack", () => {
  const { stack, template, nag } = synthesizeService((app) => sharerStack(app, testDeployConfig(), { image: testImage() }))

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

  it("tags and deletes RDS snapshots only under the names it gives its replicas", () => {
    // Prepare
    const statements = statementsOf(template)
    const tagging = statements.filter((statement) => [statement.Action].flat().includes("rds:AddTagsToResource"))
    // Act
    const names = [dbSnapshotIdentifier("dr", "awsbackup:job-1"), dbSnapshotIdentifier("dr-staging", "awsbackup:job-1")]
    // Assess
    for (const name of names) assert.isTrue(name.startsWith(REPLICA_SNAPSHOT_PREFIX), name)
    assert.strictEqual(tagging.length, 1)
    assert.deepStrictEqual([tagging[0]?.Action].flat(), ["rds:AddTagsToResource"])
    assert.match(JSON.stringify(tagging), new RegExp(`:snapshot:${REPLICA_SNAPSHOT_PREFIX}\\*"`))
    assert.notMatch(JSON.stringify(tagging), /snapshot:\*"/)
  })

  it("gets the catch-up of missed replicas from EventBridge Scheduler", () => {
    // Assess
    template.hasResourceProperties("AWS::Scheduler::Schedule", { Target: Match.objectLike({ Input: Match.stringLikeRegexp('"detail-type":"Replica Catch-Up Due"') }) })
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
