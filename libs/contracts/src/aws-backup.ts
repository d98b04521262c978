import { Schema } from "effect"
import { defineContract } from "./contract"

/** AWS Backup publishes these on the default bus with this source. */
export const AWS_BACKUP_SOURCE = "aws.backup" as const

/** Resource types as AWS Backup names them in its events. */
export const BackupResourceType = Schema.String.annotations({ description: "EBS, EC2, RDS, Aurora, DynamoDB, EFS, S3, ..." })

const createdBy = Schema.optional(
  Schema.Struct({
    backupPlanId: Schema.optional(Schema.String),
    backupPlanArn: Schema.optional(Schema.String),
    backupPlanVersion: Schema.optional(Schema.String),
    backupRuleId: Schema.optional(Schema.String)
  })
)

/** AWS Backup sends some numbers as strings and some as numbers. */
const numberish = Schema.optional(Schema.Union(Schema.String, Schema.Number))

/** "Backup Job State Change": `state`, and the recovery-point ARN in `resources[]` once COMPLETED. */
export const BackupJobStateChange = defineContract({
  source: AWS_BACKUP_SOURCE,
  detailType: "Backup Job State Change",
  versioned: false,
  detail: Schema.Struct({
    backupJobId: Schema.String,
    state: Schema.String,
    resourceType: Schema.optional(BackupResourceType),
    resourceArn: Schema.optional(Schema.String),
    backupVaultName: Schema.optional(Schema.String),
    backupVaultArn: Schema.optional(Schema.String),
    recoveryPointArn: Schema.optional(Schema.String),
    iamRoleArn: Schema.optional(Schema.String),
    creationDate: Schema.optional(Schema.String),
    completionDate: Schema.optional(Schema.String),
    backupSizeInBytes: numberish,
    bytesTransferred: numberish,
    percentDone: numberish,
    statusMessage: Schema.optional(Schema.String),
    createdBy
  })
})

/** "Recovery Point State Change": `status`, the recovery-point ARN in `resources[]`. */
export const RecoveryPointStateChange = defineContract({
  source: AWS_BACKUP_SOURCE,
  detailType: "Recovery Point State Change",
  versioned: false,
  detail: Schema.Struct({
    status: Schema.String,
    resourceType: BackupResourceType,
    resourceArn: Schema.String,
    backupVaultName: Schema.String,
    backupVaultArn: Schema.optional(Schema.String),
    storageClass: Schema.optional(Schema.String),
    iamRoleArn: Schema.optional(Schema.String),
    creationDate: Schema.optional(Schema.String),
    completionDate: Schema.optional(Schema.String),
    statusMessage: Schema.optional(Schema.String),
    createdBy
  })
})

/** "Copy Job State Change": `state`, source and destination recovery points. */
export const CopyJobStateChange = defineContract({
  source: AWS_BACKUP_SOURCE,
  detailType: "Copy Job State Change",
  versioned: false,
  detail: Schema.Struct({
    copyJobId: Schema.String,
    state: Schema.String,
    resourceType: Schema.optional(BackupResourceType),
    resourceArn: Schema.optional(Schema.String),
    sourceBackupVaultArn: Schema.optional(Schema.String),
    sourceRecoveryPointArn: Schema.optional(Schema.String),
    destinationBackupVaultArn: Schema.optional(Schema.String),
    /** AWS sends `{}` here for a copy job that failed before it made a destination recovery point. */
    destinationRecoveryPointArn: Schema.optional(Schema.Union(Schema.String, Schema.Struct({}))),
    iamRoleArn: Schema.optional(Schema.String),
    creationDate: Schema.optional(Schema.String),
    completionDate: Schema.optional(Schema.String),
    backupSizeInBytes: numberish,
    statusMessage: Schema.optional(Schema.String),
    createdBy
  })
})

/** The recovery-point ARN of an AWS Backup event: the first entry of `resources[]`, where AWS Backup puts it. */
export const recoveryPointArnOf = (event: { readonly resources: ReadonlyArray<string> }): string | undefined => event.resources[0]

/** The EBS snapshot id in an EC2 snapshot ARN (`arn:aws:ec2:<region>::snapshot/snap-...`). */
export const snapshotIdFromArn = (arn: string): string | undefined => /:snapshot\/(snap-[0-9a-zA-Z]+)$/.exec(arn)?.[1]
