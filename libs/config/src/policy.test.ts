import { assert, describe, it } from "@effect/vitest"
import { Either } from "effect"
import { DEFAULT_POLICY, archivePlanFor, parsePolicy } from "./policy"
import { topology } from "./topology"

const policyText = JSON.stringify({
  rules: [
    { name: "keep-db", match: { resourceTypes: ["RDS"] } },
    { name: "volume", match: { resourceTypes: ["EBS"], vaults: ["archive-volume"] }, archive: { mode: "volume" } },
    {
      name: "prod-direct",
      match: { resourceTypes: ["EBS"], resourceArnPattern: ":volume/vol-prod" },
      archive: { mode: "direct", compression: "gzip", deleteSourceAfterVerify: true }
    }
  ]
})

describe("archive policy", () => {
  it("picks the first rule that matches and fills in the defaults", () => {
    const policy = Either.getOrThrow(parsePolicy(policyText, "test"))
    const plan = archivePlanFor(policy, { resourceType: "EBS", resourceArn: "arn:aws:ec2:::volume/vol-1", vaultName: "archive-volume" })
    assert.deepStrictEqual(plan, { rule: "volume", mode: "volume", compression: "zstd", deleteSourceAfterVerify: false })
  })

  it("matches on the resource ARN pattern", () => {
    const policy = Either.getOrThrow(parsePolicy(policyText, "test"))
    const plan = archivePlanFor(policy, { resourceType: "EBS", resourceArn: "arn:aws:ec2:::volume/vol-prod9", vaultName: "Default" })
    assert.strictEqual(plan?.rule, "prod-direct")
    assert.isTrue(plan?.deleteSourceAfterVerify)
  })

  it("asks for nothing when no rule with an archive matches", () => {
    const policy = Either.getOrThrow(parsePolicy(policyText, "test"))
    assert.isUndefined(archivePlanFor(policy, { resourceType: "RDS", resourceArn: "arn:aws:rds:::db:x", vaultName: "Default" }))
    assert.isUndefined(archivePlanFor(policy, { resourceType: "EBS", resourceArn: "arn:aws:ec2:::volume/vol-2", vaultName: "Default" }))
  })

  it("archives EBS in direct mode and keeps the source by default", () => {
    const plan = archivePlanFor(DEFAULT_POLICY, { resourceType: "EBS", resourceArn: "arn", vaultName: "Default" })
    assert.deepStrictEqual(plan, { rule: "ebs-direct", mode: "direct", compression: "zstd", deleteSourceAfterVerify: false })
  })

  it("rejects an unknown mode, an unknown field and a broken regular expression with a reason", () => {
    const reasons = [
      JSON.stringify({ rules: [{ name: "x", match: {}, archive: { mode: "tape" } }] }),
      JSON.stringify({ rules: [{ name: "x", match: { resourceType: "EBS" } }] }),
      JSON.stringify({ rules: [{ name: "x", match: { resourceArnPattern: "(" }, archive: { mode: "direct" } }] }),
      "rules:"
    ].map((text) => Either.match(parsePolicy(text, "policy.json"), { onLeft: (error) => error.reason, onRight: () => "accepted" }))
    assert.include(reasons[0], "mode")
    assert.include(reasons[1], "resourceType")
    assert.include(reasons[2], "not a valid regular expression")
    assert.include(reasons[3], "not JSON")
  })
})

describe("topology names", () => {
  it("derives every shared name from one prefix and keeps rule names within 64 characters", () => {
    const names = topology({ account: "123456789012", region: "eu-west-1" })
    assert.strictEqual(names.artifactBucket, "backup-actions-artifacts-123456789012-eu-west-1")
    assert.strictEqual(names.ruleName("streamer", "Recovery Point State Change"), "backup-actions-streamer-recovery-point-state-change")
    assert.isAtMost(topology({ prefix: "a-very-long-prefix-for-a-test", account: "1", region: "r" }).ruleName("reporter", "Recovery Point State Change").length, 64)
  })
})
