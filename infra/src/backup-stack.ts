import { Aws, Duration, RemovalPolicy, Stack, Tags, Validations, type StackProps } from "aws-cdk-lib"
import * as backup from "aws-cdk-lib/aws-backup"
import * as events from "aws-cdk-lib/aws-events"
import * as kms from "aws-cdk-lib/aws-kms"
import * as sns from "aws-cdk-lib/aws-sns"
import type { Construct } from "constructs"
import { MANAGED_TAG_KEY, MANAGED_TAG_VALUE, coreNames, type DeployConfig } from "@backup-actions/deploy"

export interface BackupStackProps extends StackProps {
  readonly config: DeployConfig & { readonly vault: NonNullable<DeployConfig["vault"]> }
}

/**
 * AWS Backup as code: a vault on its own customer managed key (optionally locked), the
 * plans with their schedules, retention and cold storage, and selections by tag. Recovery
 * points carry the project's tag, which is what lets the services delete them when the policy
 * asks. AWS Backup sends its events to the default bus, where the core stack's rule forwards
 * them to the backup-actions bus; the vault's failures also go to the notification topic.
 */
export class BackupStack extends Stack {
  readonly vault: backup.BackupVault
  readonly plans: ReadonlyArray<backup.BackupPlan>

  constructor(scope: Construct, id: string, props: BackupStackProps) {
    const { config } = props
    super(scope, id, {
      ...props,
      stackName: `${config.prefix}-backup`,
      env: { account: config.account, region: config.region },
      description: "backup-actions: AWS Backup vault, plans and selections"
    })
    for (const [key, value] of Object.entries(config.tags)) Tags.of(this).add(key, value)
    const names = coreNames(config)
    const key = new kms.Key(this, "VaultKey", {
      alias: `alias/${config.prefix}-vault`,
      description: "Encrypts the backup-actions vault's recovery points",
      enableKeyRotation: true,
      removalPolicy: RemovalPolicy.RETAIN
    })
    const lock = config.vault.lock
    this.vault = new backup.BackupVault(this, "Vault", {
      backupVaultName: config.vault.name,
      encryptionKey: key,
      notificationTopic: sns.Topic.fromTopicArn(this, "Topic", `arn:${Aws.PARTITION}:sns:${config.region}:${config.account}:${names.notificationTopic}`),
      notificationEvents: [
        backup.BackupVaultEvents.BACKUP_JOB_FAILED,
        backup.BackupVaultEvents.BACKUP_JOB_EXPIRED,
        backup.BackupVaultEvents.COPY_JOB_FAILED,
        backup.BackupVaultEvents.RESTORE_JOB_COMPLETED
      ],
      removalPolicy: RemovalPolicy.RETAIN,
      ...(lock === undefined
        ? {}
        : {
            lockConfiguration: {
              minRetention: Duration.days(lock.minRetentionDays),
              ...(lock.maxRetentionDays === undefined ? {} : { maxRetention: Duration.days(lock.maxRetentionDays) }),
              // With a grace period the lock becomes immutable afterwards (compliance mode); without, governance mode.
              ...(lock.mode === "compliance" && lock.changeableForDays !== undefined ? { changeableFor: Duration.days(lock.changeableForDays) } : {})
            }
          })
    })
    this.plans = config.vault.plans.map((plan) => {
      const created = new backup.BackupPlan(this, `Plan-${plan.name}`, {
        backupPlanName: `${config.prefix}-${plan.name}`,
        backupVault: this.vault,
        backupPlanRules: [
          new backup.BackupPlanRule({
            ruleName: plan.name,
            scheduleExpression: events.Schedule.expression(plan.schedule),
            deleteAfter: Duration.days(plan.retentionDays),
            ...(plan.coldStorageAfterDays === undefined ? {} : { moveToColdStorageAfter: Duration.days(plan.coldStorageAfterDays) }),
            recoveryPointTags: { [MANAGED_TAG_KEY]: MANAGED_TAG_VALUE }
          })
        ]
      })
      created.addSelection("ByTags", {
        backupSelectionName: `${plan.name}-by-tags`,
        resources: Object.entries(plan.selectionTags).map(([tag, value]) => backup.BackupResource.fromTag(tag, value))
      })
      Validations.of(created).acknowledge({
        id: "AwsSolutions::AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForBackup]",
        reason: "The role AWS Backup assumes to take the selected backups: AWS's own policy for that service role, kept current by AWS as services are added."
      })
      return created
    })
  }
}
