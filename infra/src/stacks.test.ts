import { App, Validations } from "aws-cdk-lib"
import { Match, Template } from "aws-cdk-lib/assertions"
import { AwsSolutionsChecks } from "cdk-nag"
import { assert, describe, it } from "@effect/vitest"
import { AWS_BACKUP_SOURCE } from "@backup-actions/contracts"
import { COLD_STORAGE_TAG, topology } from "@backup-actions/config"
import { BackupStack } from "./backup-stack"
import { CoreStack } from "./core-stack"
import { exampleConfig } from "./test-config"

const synthesize = (options: { readonly nag?: boolean } = {}) => {
  const config = exampleConfig()
  const app = new App()
  const core = new CoreStack(app, "Core", { config })
  const backup = new BackupStack(app, "Backup", { config: { ...config, vault: config.vault ?? { name: "v", plans: [] } } })
  if (options.nag === true) Validations.of(app).addPlugins(new AwsSolutionsChecks(app))
  return { app, config, core: Template.fromStack(core), backup: Template.fromStack(backup) }
}

describe("the core stack", () => {
  it("forwards every AWS Backup event from the default bus to the backup-actions bus", () => {
    // Act
    const { core, config } = synthesize()
    // Assess
    const names = topology({ prefix: config.prefix, account: config.account, region: config.region })
    core.hasResourceProperties("AWS::Events::EventBus", { Name: names.busName })
    core.hasResourceProperties("AWS::Events::Rule", {
      Name: names.forwardRuleName,
      EventPattern: { source: [AWS_BACKUP_SOURCE] },
      Targets: [Match.objectLike({ Arn: { "Fn::GetAtt": [Match.stringLikeRegexp("^Bus"), "Arn"] } })]
    })
    core.hasResourceProperties("AWS::Events::Archive", { ArchiveName: names.archiveName, RetentionDays: config.bus.archiveRetentionDays })
  })

  it("keeps the ledger encrypted with the project's key and recoverable to any point in time", () => {
    // Act
    const { core, config } = synthesize()
    // Assess
    core.hasResourceProperties("AWS::DynamoDB::Table", {
      TableName: `${config.prefix}-ledger`,
      KeySchema: [
        { AttributeName: "pk", KeyType: "HASH" },
        { AttributeName: "sk", KeyType: "RANGE" }
      ],
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      SSESpecification: Match.objectLike({ SSEEnabled: true, SSEType: "KMS" })
    })
  })

  it("makes the artifact bucket private, SSE-KMS, versioned, logged, with the configured lifecycle for archives tagged for cold storage only", () => {
    // Act
    const { core, config } = synthesize()
    // Assess
    core.hasResourceProperties("AWS::S3::Bucket", {
      BucketName: `${config.prefix}-artifacts-${config.account}-${config.region}`,
      BucketEncryption: { ServerSideEncryptionConfiguration: [Match.objectLike({ ServerSideEncryptionByDefault: Match.objectLike({ SSEAlgorithm: "aws:kms" }) })] },
      PublicAccessBlockConfiguration: { BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true },
      VersioningConfiguration: { Status: "Enabled" },
      LoggingConfiguration: Match.objectLike({ LogFilePrefix: "artifacts/" }),
      LifecycleConfiguration: {
        Rules: Match.arrayWith([
          Match.objectLike({ Id: "archives", Prefix: "archives/", ExpirationInDays: 3650, Transitions: Match.absent() }),
          Match.objectLike({
            Id: "archives-cold-storage",
            Prefix: "archives/",
            TagFilters: [{ Key: COLD_STORAGE_TAG.key, Value: COLD_STORAGE_TAG.value }],
            Transitions: [
              { StorageClass: "GLACIER", TransitionInDays: 30 },
              { StorageClass: "DEEP_ARCHIVE", TransitionInDays: 180 }
            ]
          })
        ])
      }
    })
  })

  it("denies every request to the artifact bucket that does not use TLS", () => {
    // Act
    const { core } = synthesize()
    // Assess
    const policies = core.findResources("AWS::S3::BucketPolicy")
    const denials = Object.values(policies).flatMap((policy) =>
      (policy["Properties"]["PolicyDocument"]["Statement"] as ReadonlyArray<Record<string, unknown>>).filter(
        (statement) => statement["Effect"] === "Deny" && JSON.stringify(statement["Condition"]) === JSON.stringify({ Bool: { "aws:SecureTransport": "false" } })
      )
    )
    assert.strictEqual(denials.length, Object.keys(policies).length)
    assert.isAtLeast(denials.length, 1)
  })

  it("turns on object lock in the chosen mode when the configuration asks for it", () => {
    // Prepare
    const config = { ...exampleConfig(), bucket: { ...exampleConfig().bucket, objectLock: { mode: "COMPLIANCE" as const, days: 90 } } }
    // Act
    const template = Template.fromStack(new CoreStack(new App(), "Core", { config }))
    // Assess
    template.hasResourceProperties("AWS::S3::Bucket", {
      ObjectLockEnabled: true,
      ObjectLockConfiguration: { ObjectLockEnabled: "Enabled", Rule: { DefaultRetention: { Mode: "COMPLIANCE", Days: 90 } } }
    })
  })
})

describe("AWS Backup as code", () => {
  it("creates the vault on its own customer managed key, locked as configured, with failure notifications", () => {
    // Act
    const { backup, config } = synthesize()
    // Assess
    backup.hasResourceProperties("AWS::Backup::BackupVault", {
      BackupVaultName: config.vault?.name,
      EncryptionKeyArn: { "Fn::GetAtt": [Match.stringLikeRegexp("^VaultKey"), "Arn"] },
      LockConfiguration: { MinRetentionDays: 7, MaxRetentionDays: 400 },
      Notifications: Match.objectLike({ BackupVaultEvents: Match.arrayWith(["BACKUP_JOB_FAILED", "COPY_JOB_FAILED"]) })
    })
    backup.hasResourceProperties("AWS::KMS::Key", { EnableKeyRotation: true })
  })

  it("creates each plan with its schedule, retention, cold storage and tag selection, tagging recovery points as the project's", () => {
    // Act
    const { backup } = synthesize()
    // Assess
    backup.resourceCountIs("AWS::Backup::BackupPlan", 3)
    backup.hasResourceProperties("AWS::Backup::BackupPlan", {
      BackupPlan: Match.objectLike({
        BackupPlanName: "backup-actions-monthly-cold",
        BackupPlanRule: [
          Match.objectLike({
            ScheduleExpression: "cron(0 4 1 * ? *)",
            Lifecycle: { DeleteAfterDays: 365, MoveToColdStorageAfterDays: 30 },
            RecoveryPointTags: { "backup-actions:managed": "true" }
          })
        ]
      })
    })
    backup.hasResourceProperties("AWS::Backup::BackupSelection", {
      BackupSelection: Match.objectLike({ ListOfTags: [{ ConditionKey: "backup", ConditionValue: "dr", ConditionType: "STRINGEQUALS" }] })
    })
  })

  it("refuses a compliance-mode lock without its grace period, saying so", async () => {
    // Prepare
    const { parseDeployConfig } = await import("@backup-actions/deploy")
    const text = JSON.stringify({ account: "111122223333", region: "eu-west-1", vault: { name: "vault-1", lock: { mode: "compliance", minRetentionDays: 7 } } })
    // Act
    const parsed = parseDeployConfig(text, "deploy.json")
    // Assess
    assert.strictEqual(parsed._tag, "Left")
    assert.include(parsed._tag === "Left" ? parsed.left.message : "", "compliance mode needs changeableForDays of at least 3")
  })
})

describe("cdk-nag AwsSolutions", () => {
  it("passes on the core and backup stacks with only the acknowledged findings", () => {
    // Prepare
    const { app } = synthesize({ nag: true })
    // Act and Assess: a finding that is not acknowledged fails the synthesis
    assert.doesNotThrow(() => app.synth())
  })
})
