import { assert, describe, it } from "@effect/vitest"
import { BackupClient, ListRecoveryPointsByBackupVaultCommand } from "@aws-sdk/client-backup"
import type { Image, ImageState } from "@aws-sdk/client-ec2"
import { mockClient } from "aws-sdk-client-mock"
import { Effect, Either, Logger, Option, Schema } from "effect"
import { Backup } from "@backup-actions/aws"
import { ExportAction, parsePolicy, type Policy } from "@backup-actions/config"
import { instanceIdOf } from "./ami-image"
import { storedImageKey } from "./ami-archive"
import { parseAmiArn } from "./arns"
import { BACKUP_SOURCE_TAG } from "./ami-image"
import { amiVaultsNamedByRules, leftToSweep, selectForSweep, vaultsOfAmis } from "./ami-sweep"

const NOW = Date.parse("2026-11-22T12:00:00Z")
const daysAgo = (days: number): string => new Date(NOW - days * 86_400_000).toISOString()

const ami = (imageId: string, createdDaysAgo: number, tags: Record<string, string>, state: ImageState = "available"): Image => ({
  ImageId: imageId,
  State: state,
  OwnerId: "123456789012",
  CreationDate: daysAgo(createdDaysAgo),
  Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value }))
})

const rule = (name: string, match: Policy["rules"][number]["match"], action: Schema.Schema.Encoded<typeof ExportAction>) => ({
  name,
  match,
  export: Schema.decodeUnknownSync(ExportAction)(action)
})

const options = { partition: "aws", region: "us-east-1", account: undefined, nowMs: NOW }

describe("the AMI sweep's selection", () => {
  it("takes only managed AMIs that are old enough, under the AMI ARN the recovery-point event would carry", () => {
    // Prepare
    const policy: Policy = { rules: [rule("amis", { resourceTypes: ["EC2"] }, { mode: "native", olderThanDays: 30 })] }
    const images = [
      ami("ami-0000000000000000a", 31, { "backup-actions:managed": "true", "backup-actions:instance-id": "i-0123456789abcdef0" }),
      ami("ami-0000000000000000b", 29, { "backup-actions:managed": "true" }),
      ami("ami-0000000000000000c", 400, {}),
      ami("ami-0000000000000000d", 400, { "backup-actions:managed": "true" }, "pending")
    ]
    // Act
    const { selected } = selectForSweep(policy, images, options)
    // Assess
    assert.deepStrictEqual(
      selected.map((image) => [image.recoveryPointArn, image.resourceArn, image.backupVaultName]),
      [["arn:aws:ec2:us-east-1::image/ami-0000000000000000a", "arn:aws:ec2:us-east-1:123456789012:instance/i-0123456789abcdef0", ""]]
    )
  })

  it("takes every matching AMI when the rule sweeps all it matches, and none that no rule matches", () => {
    // Prepare
    const policy: Policy = {
      rules: [
        rule("vaulted", { resourceTypes: ["EC2"], vaults: ["amis"] }, { mode: "native" }),
        rule("team", { resourceTypes: ["EC2"], tags: { team: "data" } }, { mode: "direct", sweepSelects: "matching", olderThanDays: 7 })
      ]
    }
    const images = [ami("ami-0000000000000000e", 8, { team: "data" }), ami("ami-0000000000000000f", 8, { team: "web" })]
    // Act: AWS Backup holds neither in the vault the first rule names
    const { selected } = selectForSweep(policy, images, { ...options, vaultOf: Option.some(new Map()) })
    // Assess
    assert.deepStrictEqual(
      selected.map((image) => [image.imageId, image.plan.rule, image.plan.mode]),
      [["ami-0000000000000000e", "team", "direct"]]
    )
  })

  it("takes for a rule limited to vaults only the AMIs that AWS Backup keeps in one of them, with that vault", () => {
    // Prepare
    const policy: Policy = {
      rules: [
        rule("vaulted", { resourceTypes: ["EC2"], vaults: ["golden-amis", "old-amis"] }, { mode: "native", sweepSelects: "matching" }),
        rule("managed", { resourceTypes: ["EC2"] }, { mode: "direct" })
      ]
    }
    const images = [
      ami("ami-00000000000000001", 3, { [BACKUP_SOURCE_TAG]: "i-1" }),
      ami("ami-00000000000000002", 3, { [BACKUP_SOURCE_TAG]: "i-2", "backup-actions:managed": "true" }),
      ami("ami-00000000000000003", 3, { [BACKUP_SOURCE_TAG]: "i-3" })
    ]
    const vaultOf = new Map([
      ["arn:aws:ec2:us-east-1::image/ami-00000000000000001", "old-amis"],
      ["arn:aws:ec2:us-east-1::image/ami-00000000000000009", "golden-amis"]
    ])
    // Act
    const { selected, undecided } = selectForSweep(policy, images, { ...options, vaultOf: Option.some(vaultOf) })
    // Assess: the first in a named vault, the second in none of them (so the next rule's), the third taken by no rule
    assert.deepStrictEqual(
      selected.map((image) => [image.imageId, image.plan.rule, image.backupVaultName]),
      [
        ["ami-00000000000000001", "vaulted", "old-amis"],
        ["ami-00000000000000002", "managed", ""]
      ]
    )
    assert.deepStrictEqual(undecided, [])
  })

  it("leaves out, without AWS Backup's answer, every AMI of AWS Backup's whose first matching rule is limited to vaults, and never gives it a later rule's plan", () => {
    // Prepare
    const policy: Policy = {
      rules: [
        rule("vaulted", { resourceTypes: ["EC2"], tags: { tier: "gold" }, vaults: ["golden-amis"] }, { mode: "native", sweepSelects: "matching" }),
        rule("managed", { resourceTypes: ["EC2"] }, { mode: "direct" })
      ]
    }
    const images = [
      ami("ami-00000000000000004", 3, { [BACKUP_SOURCE_TAG]: "i-4", tier: "gold", "backup-actions:managed": "true" }),
      ami("ami-00000000000000005", 3, { [BACKUP_SOURCE_TAG]: "i-5", "backup-actions:managed": "true" }),
      ami("ami-00000000000000006", 3, { tier: "gold", "backup-actions:managed": "true" })
    ]
    // Act
    const { selected, undecided } = selectForSweep(policy, images, { ...options, vaultOf: Option.none() })
    // Assess: AWS Backup's gold AMI may be in the vault or not, so neither rule takes it; the other
    // is the managed rule's; a gold AMI that AWS Backup did not make is in no vault at all
    assert.deepStrictEqual(undecided, ["ami-00000000000000004"])
    assert.deepStrictEqual(
      selected.map((image) => [image.imageId, image.plan.rule]),
      [
        ["ami-00000000000000005", "managed"],
        ["ami-00000000000000006", "managed"]
      ]
    )
  })

  it("asks AWS Backup only about the vaults that export rules for AMIs name", () => {
    // Prepare
    const policy: Policy = {
      rules: [
        rule("tables", { resourceTypes: ["DynamoDB"], vaults: ["tables"] }, { mode: "parquet" }),
        rule("images", { resourceTypes: ["EC2"], vaults: ["golden-amis"] }, { mode: "native" }),
        rule("anything", { vaults: ["golden-amis", "everything"] }, { mode: "native" }),
        { name: "replicas", match: { vaults: ["dr"] }, replicate: { destinationAccount: "444455556666", destinationRegion: "eu-central-1", kmsKeyId: "alias/dr", retentionDays: 30, maxConcurrentCopies: 20 } }
      ]
    }
    // Act
    const vaults = amiVaultsNamedByRules(policy)
    // Assess
    assert.deepStrictEqual(vaults, ["golden-amis", "everything"])
  })
})

describe("which vault holds an AMI, from AWS Backup", () => {
  it.effect("lists each vault's EC2 recovery points page by page and keys them by the AMI ARN the sweep builds", () =>
    Effect.gen(function* () {
      // Prepare
      const client = new BackupClient({ region: "us-east-1" })
      const backup = mockClient(client)
      backup
        .on(ListRecoveryPointsByBackupVaultCommand, { BackupVaultName: "golden-amis" })
        .resolvesOnce({ RecoveryPoints: [{ RecoveryPointArn: "arn:aws:ec2:us-east-1::image/ami-0000000000000000a", ResourceType: "EC2" }], NextToken: "page-2" })
        .resolvesOnce({ RecoveryPoints: [{ RecoveryPointArn: "arn:aws:ec2:us-east-1:123456789012:image/ami-0000000000000000b", ResourceType: "EC2" }] })
      backup
        .on(ListRecoveryPointsByBackupVaultCommand, { BackupVaultName: "old-amis" })
        .resolves({ RecoveryPoints: [{ RecoveryPointArn: "arn:aws:ec2:us-east-1::image/ami-0000000000000000c", ResourceType: "EC2" }] })
      // Act
      const vaultOf = yield* vaultsOfAmis(["golden-amis", "old-amis"]).pipe(Effect.provideService(Backup, client))
      // Assess
      assert.deepStrictEqual(
        Option.map(vaultOf, (vaults) => [...vaults]),
        Option.some([
          ["arn:aws:ec2:us-east-1::image/ami-0000000000000000a", "golden-amis"],
          ["arn:aws:ec2:us-east-1::image/ami-0000000000000000b", "golden-amis"],
          ["arn:aws:ec2:us-east-1::image/ami-0000000000000000c", "old-amis"]
        ])
      )
      assert.deepStrictEqual(
        backup.commandCalls(ListRecoveryPointsByBackupVaultCommand).map((call) => call.args[0].input),
        [
          { BackupVaultName: "golden-amis", ByResourceType: "EC2", MaxResults: 1000, NextToken: undefined },
          { BackupVaultName: "golden-amis", ByResourceType: "EC2", MaxResults: 1000, NextToken: "page-2" },
          { BackupVaultName: "old-amis", ByResourceType: "EC2", MaxResults: 1000, NextToken: undefined }
        ]
      )
    })
  )

  it.effect("has no answer when AWS Backup refuses, so that rules limited to vaults select nothing", () =>
    Effect.gen(function* () {
      // Prepare
      const client = new BackupClient({ region: "us-east-1" })
      const backup = mockClient(client)
      backup.on(ListRecoveryPointsByBackupVaultCommand).rejects(Object.assign(new Error("User is not authorized"), { name: "AccessDeniedException", $metadata: { httpStatusCode: 403 } }))
      const logged: Array<string> = []
      const logger = Logger.replace(Logger.defaultLogger, Logger.make(({ message }) => logged.push((Array.isArray(message) ? message : [message]).map(String).join(" "))))
      // Act
      const vaultOf = yield* vaultsOfAmis(["golden-amis"]).pipe(Effect.provideService(Backup, client), Effect.provide(logger))
      // Assess
      assert.isTrue(Option.isNone(vaultOf))
      assert.deepStrictEqual(logged, [
        "AMI sweep: AWS Backup could not list the EC2 recovery points of vault(s) golden-amis (backup:ListRecoveryPointsByBackupVault: AccessDeniedException: User is not authorized); rules limited to vaults select no AMI in this sweep"
      ])
    })
  )
})

describe("the AMI recovery-point event", () => {
  it("leaves an AMI younger than the rule's age to the sweep, and exports an old enough or undated one at once", () => {
    // Prepare
    const plan = { rule: "amis", ...Schema.decodeUnknownSync(ExportAction)({ mode: "native", olderThanDays: 14 }) }
    const atOnce = { rule: "amis", ...Schema.decodeUnknownSync(ExportAction)({ mode: "native" }) }
    // Act
    const young = leftToSweep(plan, daysAgo(13), NOW)
    const old = leftToSweep(plan, daysAgo(14), NOW)
    const undated = leftToSweep(plan, undefined, NOW)
    const immediate = leftToSweep(atOnce, daysAgo(0), NOW)
    // Assess
    assert.deepStrictEqual([young, old, undated, immediate], [true, false, false, false])
  })
})

describe("AMI naming", () => {
  it("files a stored image by account, region, instance and the AMI's creation day in UTC", () => {
    // Act
    const key = storedImageKey({ account: "123456789012", region: "eu-west-1", instanceId: "i-0abc12345678def90", imageId: "ami-0def", creationDate: new Date("2026-01-09T23:59:59Z") })
    // Assess
    assert.strictEqual(key, "recovery-points/123456789012/eu-west-1/i-0abc12345678def90/2026/01/09/ami-0def.bin")
  })

  it("finds the instance in AWS Backup's tag before the resource ARN, and says when nothing names one", () => {
    // Prepare
    const tagged = ami("ami-01", 1, { "aws:backup:source-resource": "i-0aaaaaaaaaaaaaaaa" })
    // Act
    const fromTag = instanceIdOf(tagged, "arn:aws:ec2:us-east-1:123456789012:instance/i-0bbbbbbbbbbbbbbbb")
    const fromArn = instanceIdOf(ami("ami-02", 1, {}), "arn:aws:ec2:us-east-1:123456789012:instance/i-0bbbbbbbbbbbbbbbb")
    const none = instanceIdOf(ami("ami-03", 1, {}), "")
    // Assess
    assert.strictEqual(fromTag, "i-0aaaaaaaaaaaaaaaa")
    assert.strictEqual(fromArn, "i-0bbbbbbbbbbbbbbbb")
    assert.strictEqual(none, "unknown-instance")
  })

  it("reads an EC2 recovery point's AMI ARN with or without an account, and nothing else", () => {
    // Act
    const plain = parseAmiArn("arn:aws:ec2:us-east-1::image/ami-0123456789abcdef0")
    const withAccount = parseAmiArn("arn:aws:ec2:us-east-1:123456789012:image/ami-0123456789abcdef0")
    const snapshot = parseAmiArn("arn:aws:ec2:us-east-1::snapshot/snap-0123456789abcdef0")
    // Assess
    assert.strictEqual(plain?.imageId, "ami-0123456789abcdef0")
    assert.strictEqual(withAccount?.arn, "arn:aws:ec2:us-east-1::image/ami-0123456789abcdef0")
    assert.isUndefined(snapshot)
  })
})

describe("the AMI export policy", () => {
  it("defaults to Glacier, to exporting at once and to sweeping managed AMIs only", () => {
    // Act
    const action = Schema.decodeUnknownSync(ExportAction)({ mode: "native" })
    // Assess
    assert.strictEqual(action.storageClass, "GLACIER")
    assert.strictEqual(action.olderThanDays, 0)
    assert.strictEqual(action.sweepSelects, "managed")
  })

  it("refuses a storage class that is not a Glacier class, a negative age and deleting after a direct export, naming the field", () => {
    // Act
    const badClass = parsePolicy(JSON.stringify({ rules: [{ name: "a", match: {}, export: { mode: "native", storageClass: "STANDARD" } }] }), "test")
    const badAge = parsePolicy(JSON.stringify({ rules: [{ name: "a", match: {}, export: { mode: "native", olderThanDays: -1 } }] }), "test")
    const direct = parsePolicy(JSON.stringify({ rules: [{ name: "a", match: {}, export: { mode: "direct", deleteSourceAfterVerify: true } }] }), "test")
    // Assess
    assert.isTrue(Either.isLeft(badClass) && badClass.left.reason.includes("storageClass"))
    assert.isTrue(Either.isLeft(badAge) && badAge.left.reason.includes("olderThanDays"))
    assert.isTrue(Either.isLeft(direct) && direct.left.reason.includes("deleteSourceAfterVerify needs mode"))
  })
})
