import { assert, describe, it } from "@effect/vitest"
import { Either, ParseResult, Schema } from "effect"
import { DEFAULT_POLICY, Policy, archivePlanFor, exportPlanFor, mayApply, needsTags, parsePolicy, replicaPlanFor, type PolicyDocument } from "./policy"
import { topology } from "./topology"
import { periodMs } from "./drill-policy"

const policyText = JSON.stringify({
  rules: [
    { name: "keep-db", match: { resourceTypes: ["RDS"] }, export: { mode: "native", kmsKeyId: "alias/exports", iamRoleArn: "arn:aws:iam::123456789012:role/rds-export" } },
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

/** The README's example policy, as an operator writes it. */
const readmeExample: PolicyDocument = {
  rules: [
    { name: "root-volumes", match: { resourceTypes: ["EBS"], vaults: ["archive-volume"] }, archive: { mode: "volume" } },
    { name: "legacy-postgres", match: { resourceTypes: ["RDS"], resourceArnPattern: ":db:legacy-" }, archive: { mode: "dump", instanceClass: "db.t4g.small" } },
    {
      name: "golden-amis",
      match: { resourceTypes: ["EC2"] },
      export: { mode: "native", storageClass: "DEEP_ARCHIVE", olderThanDays: 30, deleteSourceAfterVerify: true }
    },
    {
      name: "prod-ebs",
      match: { resourceTypes: ["EBS"], tags: { env: "prod" } },
      archive: { mode: "direct", compression: "gzip", deleteSourceAfterVerify: true },
      replicate: {
        destinationAccount: "444455556666",
        destinationRegion: "eu-central-1",
        kmsKeyId: "alias/dr-replicas",
        roleArn: "arn:aws:iam::444455556666:role/backup-actions-dr",
        externalId: "backup-actions",
        retentionDays: 14
      }
    },
    { name: "orders", match: { resourceTypes: ["DynamoDB"] }, export: { mode: "parquet" } },
    {
      name: "databases",
      match: { resourceTypes: ["RDS", "Aurora"] },
      export: { mode: "native", kmsKeyId: "arn:aws:kms:eu-west-1:111122223333:key/export", iamRoleArn: "arn:aws:iam::111122223333:role/rds-s3-export" }
    }
  ]
}

const reasonOf = (document: PolicyDocument): string =>
  Either.match(parsePolicy(JSON.stringify(document), "policy.json"), { onLeft: (error) => error.reason, onRight: () => "accepted" })

const oneRule = (rule: PolicyDocument["rules"][number]): PolicyDocument => ({ rules: [rule] })

const replicate = { destinationAccount: "444455556666", destinationRegion: "eu-central-1", kmsKeyId: "alias/dr-replicas" }

describe("the policy's checks at start", () => {
  it("accepts the README's example, and rules without resource types whose actions fit only some types", () => {
    // Act
    const reasons = [
      reasonOf(readmeExample),
      reasonOf(oneRule({ name: "everything-direct", match: {}, archive: { mode: "direct" } })),
      reasonOf(oneRule({ name: "every-replica", match: { vaults: ["dr"] }, replicate, export: { mode: "parquet" } }))
    ]
    // Assess
    assert.deepStrictEqual(reasons, ["accepted", "accepted", "accepted"])
  })

  it("refuses a resource type that AWS Backup does not name so, saying how it writes one that differs only in case", () => {
    // Act
    const lowercase = reasonOf(oneRule({ name: "small-letters", match: { resourceTypes: ["ebs"] }, archive: { mode: "direct" } }))
    const unknown = reasonOf(oneRule({ name: "volumes", match: { resourceTypes: ["EBSVolume"] }, archive: { mode: "direct" } }))
    // Assess
    assert.strictEqual(lowercase, `rule "small-letters": match.resourceTypes: "ebs" is not an AWS Backup resource type; AWS Backup writes it "EBS"`)
    assert.strictEqual(
      unknown,
      `rule "volumes": match.resourceTypes: "EBSVolume" is not an AWS Backup resource type (Aurora, CloudFormation, DocumentDB, DynamoDB, EBS, EC2, EFS, EKS, FSx, Neptune, RDS, Redshift, S3, SAP HANA on Amazon EC2, Storage Gateway, Timestream, VirtualMachine)`
    )
  })

  it("refuses an archive mode for resource types it cannot read, naming the rule, the mode and the types", () => {
    // Act
    const reasons = [
      reasonOf(oneRule({ name: "prod-ebs", match: { resourceTypes: ["RDS"] }, archive: { mode: "direct" } })),
      reasonOf(oneRule({ name: "files", match: { resourceTypes: ["EBS", "EFS"] }, archive: { mode: "volume" } })),
      reasonOf(oneRule({ name: "dumps", match: { resourceTypes: ["RDS", "Aurora", "DynamoDB"] }, archive: { mode: "dump" } }))
    ]
    // Assess
    assert.deepStrictEqual(reasons, [
      `rule "prod-ebs": archive mode "direct" needs resource type EBS, but the rule matches RDS`,
      `rule "files": archive mode "volume" needs resource type EBS, but the rule matches EFS`,
      `rule "dumps": archive mode "dump" needs resource type RDS, but the rule matches Aurora and DynamoDB`
    ])
  })

  it("refuses an export mode for kinds the exporter does not export that way, and deleting after a native export it cannot verify", () => {
    // Act
    const reasons = [
      reasonOf(oneRule({ name: "volumes", match: { resourceTypes: ["EBS"] }, export: { mode: "native" } })),
      reasonOf(oneRule({ name: "tables", match: { resourceTypes: ["DynamoDB", "RDS"] }, export: { mode: "parquet" } })),
      reasonOf(oneRule({ name: "images", match: { resourceTypes: ["EC2", "Aurora"] }, export: { mode: "direct" } })),
      reasonOf(oneRule({ name: "purge", match: { resourceTypes: ["EC2", "RDS"] }, export: { mode: "native", deleteSourceAfterVerify: true } }))
    ]
    // Assess
    assert.deepStrictEqual(reasons, [
      `rule "volumes": export mode "native" needs resource type EC2, DynamoDB, RDS or Aurora, but the rule matches EBS`,
      `rule "tables": export mode "parquet" needs resource type DynamoDB, but the rule matches RDS`,
      `rule "images": export mode "direct" needs resource type EC2, but the rule matches Aurora`,
      `rule "purge": export deleteSourceAfterVerify in mode "native" (the exporter verifies only an AMI's native export) needs resource type EC2, but the rule matches RDS`
    ])
  })

  it("refuses a replica of a resource type the sharer cannot copy, a rule without an action and empty lists, every problem at once", () => {
    // Act
    const reason = reasonOf({
      rules: [
        { name: "files-dr", match: { resourceTypes: ["EFS", "EBS"] }, replicate },
        { name: "nothing", match: { resourceTypes: ["RDS"] } },
        { name: "no-types", match: { resourceTypes: [], vaults: [] }, archive: { mode: "direct" } }
      ]
    })
    // Assess
    assert.strictEqual(
      reason,
      [
        `rule "files-dr": replicate needs resource type EBS, RDS or Aurora, but the rule matches EFS`,
        `rule "nothing": asks for no action (archive, export or replicate), so it never acts`,
        `rule "no-types": match.resourceTypes is empty, so the rule matches no recovery point`,
        `rule "no-types": match.vaults is empty, so the rule matches no recovery point`
      ].join("; ")
    )
  })

  it("refuses the same rules where the policy comes in another document (the deployment's), naming them", () => {
    // Act
    const decoded = Schema.decodeUnknownEither(Policy)(oneRule({ name: "prod-ebs", match: { resourceTypes: ["RDS"] }, archive: { mode: "direct" } }))
    // Assess
    assert.isTrue(Either.isLeft(decoded))
    const message = Either.isLeft(decoded) ? ParseResult.TreeFormatter.formatErrorSync(decoded.left) : ""
    assert.include(message, `rule "prod-ebs": archive mode "direct" needs resource type EBS, but the rule matches RDS`)
  })
})

describe("the rules a recovery point may meet before its tags are known", () => {
  const policy = Either.getOrThrow(parsePolicy(JSON.stringify(readmeExample), "README"))
  const volume = { resourceType: "EBS", resourceArn: "arn:aws:ec2:eu-west-1:111122223333:volume/vol-0123456789abcdef0" }

  it("asks for the tags while a rule that matches on them may still decide, and not once a rule without tags wins first", () => {
    // Act
    const ebsArchive = needsTags(policy, "archive", { ...volume, vaultName: "Default" })
    const volumeVault = needsTags(policy, "archive", { ...volume, vaultName: "archive-volume" })
    const tables = needsTags(policy, "export", { resourceType: "DynamoDB", resourceArn: "arn:aws:dynamodb:eu-west-1:111122223333:table/orders", vaultName: "Default" })
    const unknownVault = needsTags(policy, "archive", volume)
    // Assess
    assert.deepStrictEqual([ebsArchive, volumeVault, tables, unknownVault], [true, false, false, true])
  })

  it("tells a service whether a rule may ask it to act, by the action's mode, before anything is looked up", () => {
    // Act
    const direct = mayApply(policy, "archive", { ...volume, vaultName: "Default" }, (rule) => rule.archive?.mode === "direct")
    const volumeMode = mayApply(policy, "archive", { ...volume, vaultName: "Default" }, (rule) => rule.archive?.mode === "volume")
    const dump = mayApply(policy, "archive", { resourceType: "RDS", resourceArn: "arn:aws:rds:eu-west-1:111122223333:db:orders", vaultName: "Default" })
    const legacyDump = mayApply(policy, "archive", { resourceType: "RDS", resourceArn: "arn:aws:rds:eu-west-1:111122223333:db:legacy-orders", vaultName: "Default" })
    // Assess
    assert.deepStrictEqual([direct, volumeMode, dump, legacyDump], [true, false, false, true])
  })

  it("selects the tagged resource for every action of a tag rule once its tags are known, and nothing without them", () => {
    // Prepare
    const facts = { ...volume, vaultName: "Default" }
    // Act
    const tagged = { ...facts, tags: { env: "prod", team: "storage" } }
    const plans = [archivePlanFor(policy, tagged)?.rule, replicaPlanFor(policy, tagged)?.rule, exportPlanFor(policy, tagged)?.rule]
    const untagged = [archivePlanFor(policy, { ...facts, tags: {} }), replicaPlanFor(policy, facts)]
    // Assess
    assert.deepStrictEqual(plans, ["prod-ebs", "prod-ebs", undefined])
    assert.deepStrictEqual(untagged, [undefined, undefined])
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

describe("restore drill policy", () => {
  it("reads drill.every as a period in minutes, hours or days", () => {
    // Prepare
    const text = (every: string) => JSON.stringify({ rules: [{ name: "ebs", match: { resourceTypes: ["EBS"] }, archive: { mode: "direct" } }], drill: { every } })
    // Act
    const week = parsePolicy(text("7d"), "test")
    const wrong = parsePolicy(text("1 week"), "test")
    // Assess
    assert.strictEqual(Either.isRight(week) ? periodMs(week.right.drill?.every ?? "") : 0, 7 * 86_400_000)
    assert.strictEqual(periodMs("12h"), 12 * 3_600_000)
    assert.strictEqual(periodMs("30m"), 30 * 60_000)
    assert.match(Either.isLeft(wrong) ? wrong.left.reason : "(accepted)", /a period is a whole number then m, h or d, e\.g\. "7d"/)
  })
})
