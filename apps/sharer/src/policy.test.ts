import { assert, describe, it } from "@effect/vitest"
import { Either } from "effect"
import { parsePolicy, replicaPlanFor } from "@backup-actions/config"

const rule = (replicate: Record<string, unknown>) =>
  JSON.stringify({ rules: [{ name: "dr", match: { resourceTypes: ["EBS"] }, replicate }] })

const valid = {
  destinationAccount: "222222222222",
  destinationRegion: "eu-west-1",
  kmsKeyId: "alias/dr-replicas",
  roleArn: "arn:aws:iam::222222222222:role/backup-actions-dr-replicator",
  externalId: "dr-external-id"
}

const reasonOf = (replicate: Record<string, unknown>): string =>
  Either.match(parsePolicy(rule(replicate), "policy.json"), { onLeft: (error) => error.reason, onRight: () => "accepted" })

describe("the replicate policy", () => {
  it("fills in 30 days of retention and the AWS quota of 20 concurrent copies", () => {
    // Prepare
    const policy = Either.getOrThrow(parsePolicy(rule(valid), "policy.json"))
    // Act
    const plan = replicaPlanFor(policy, { resourceType: "EBS", resourceArn: "arn:aws:ec2:us-east-1:111111111111:volume/vol-1", vaultName: "Default" })
    // Assess
    assert.deepStrictEqual(plan, { rule: "dr", ...valid, retentionDays: 30, maxConcurrentCopies: 20 })
  })

  it("accepts a copy within the sharer's own account without a role", () => {
    // Act
    const reason = reasonOf({ destinationAccount: "111111111111", destinationRegion: "eu-west-1", kmsKeyId: "alias/dr" })
    // Assess
    assert.strictEqual(reason, "accepted")
  })

  it("refuses a role without an external id, a role of another account and an external id without a role", () => {
    // Act
    const reasons = [
      reasonOf({ ...valid, externalId: undefined }),
      reasonOf({ ...valid, roleArn: "arn:aws:iam::333333333333:role/elsewhere" }),
      reasonOf({ ...valid, roleArn: undefined })
    ]
    // Assess
    assert.include(reasons[0], "roleArn needs an externalId")
    assert.include(reasons[1], "roleArn must be a role in the destination account 222222222222")
    assert.include(reasons[2], "externalId is only used with roleArn")
  })

  it("refuses an AWS managed destination key, a malformed account or region, and a bound outside 1 to 100", () => {
    // Act
    const reasons = [
      reasonOf({ ...valid, kmsKeyId: "alias/aws/ebs" }),
      reasonOf({ ...valid, destinationAccount: "2222" }),
      reasonOf({ ...valid, destinationRegion: "Ireland" }),
      reasonOf({ ...valid, maxConcurrentCopies: 0 }),
      reasonOf({ ...valid, retentionDays: 0 })
    ]
    // Assess
    assert.include(reasons[0], "not an AWS managed alias/aws/... key")
    assert.include(reasons[1], "an AWS account id is 12 digits")
    assert.include(reasons[2], "a region looks like eu-west-1")
    assert.include(reasons[3], "maxConcurrentCopies")
    assert.include(reasons[4], "retentionDays")
  })
})
