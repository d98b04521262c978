import type { OutcomeEvent } from "./entry"
import type { AwsBackupJobEvent, AwsBackupJobKind } from "./jobs"

const envelope = { version: "0", region: "us-east-1", resources: [], source: "backup-actions" as const }

/** Outcome events as the other services publish them, for the reporter's tests. */
export const archiveEvent = (options: { readonly snapshot: string; readonly time: string; readonly failed?: boolean; readonly bytes?: number }): OutcomeEvent => {
  const arn = `arn:aws:ec2:us-east-1::snapshot/${options.snapshot}`
  return {
    ...envelope,
    id: `archive-${options.snapshot}-${options.time}`,
    time: options.time,
    "detail-type": "Archive Completed",
    detail: {
      schemaVersion: 1,
      correlationId: arn,
      idempotencyKey: `${arn}#archive:direct`,
      status: options.failed === true ? "failed" : "archived",
      snapshotId: options.snapshot,
      mode: "direct",
      compression: "zstd",
      bytesRead: options.bytes ?? 64 * 1024 * 1024,
      bytesStored: options.failed === true ? 0 : Math.round((options.bytes ?? 64 * 1024 * 1024) / 4),
      durationMs: 1_500,
      verified: options.failed === true ? "none" : "content",
      sourceDeleted: false,
      ...(options.failed === true
        ? { reason: "GetSnapshotBlock failed: ValidationException: the snapshot is gone" }
        : { location: { bucket: "artifacts", key: `archives/ebs/${options.snapshot}/direct/disk.img.zst` } })
    }
  }
}

export const exportEvent = (options: { readonly table: string; readonly time: string; readonly failed?: boolean }): OutcomeEvent => {
  const arn = `arn:aws:dynamodb:us-east-1:123456789012:table/${options.table}/backup/01`
  return {
    ...envelope,
    id: `export-${options.table}-${options.time}`,
    time: options.time,
    "detail-type": "Export Completed",
    detail: {
      schemaVersion: 1,
      correlationId: arn,
      idempotencyKey: `${arn}#export:parquet`,
      status: options.failed === true ? "failed" : "exported",
      kind: "dynamodb",
      sourceDeleted: false,
      ...(options.failed === true
        ? { reason: 'backup "01" not found, "quoted", and, commas' }
        : { location: { bucket: "artifacts", key: `exports/dynamodb/${options.table}/01/data.parquet` }, format: "parquet", bytesStored: 4_096 })
    }
  }
}

export const replicaEvent = (options: { readonly snapshot: string; readonly time: string; readonly ageSeconds: number }): OutcomeEvent => {
  const arn = `arn:aws:ec2:us-east-1::snapshot/${options.snapshot}`
  return {
    ...envelope,
    id: `replica-${options.snapshot}-${options.time}`,
    time: options.time,
    "detail-type": "Replica Completed",
    detail: {
      schemaVersion: 1,
      correlationId: arn,
      idempotencyKey: `${arn}#replicate:210987654321:eu-west-1`,
      status: "replicated",
      sourceArn: arn,
      replicaArn: `arn:aws:ec2:eu-west-1::snapshot/snap-replica-${options.snapshot}`,
      account: "210987654321",
      region: "eu-west-1",
      kmsKeyId: "arn:aws:kms:eu-west-1:210987654321:key/dr",
      replicaAgeSeconds: options.ageSeconds
    }
  }
}

/**
 * An AWS Backup job event in the shape AWS Backup sends it (as its EventBridge documentation
 * shows), for the reports' tests: a backup job's vault by name, a copy job's by ARN, a
 * restore job's `status` where the others say `state`.
 */
export const backupJobEvent = (options: {
  readonly kind: AwsBackupJobKind
  readonly jobId: string
  readonly state: string
  readonly time: string
  readonly statusMessage?: string
}): AwsBackupJobEvent => {
  const account = "123456789012"
  const vault = `vault-${options.jobId}`
  const vaultArn = `arn:aws:backup:us-east-1:${account}:backup-vault:${vault}`
  const resourceArn = `arn:aws:ec2:us-east-1:${account}:volume/vol-${options.jobId}`
  const common = { version: "0", id: `event-${options.jobId}-${options.state}`, source: "aws.backup" as const, account, time: options.time, region: "us-east-1" }
  const message = options.statusMessage === undefined ? {} : { statusMessage: options.statusMessage }
  switch (options.kind) {
    case "backup":
      return {
        ...common,
        "detail-type": "Backup Job State Change",
        resources: options.state === "COMPLETED" ? [`arn:aws:ec2:us-east-1::snapshot/snap-${options.jobId}`] : [],
        detail: { backupJobId: options.jobId, state: options.state, resourceType: "EBS", resourceArn, backupVaultName: vault, backupVaultArn: vaultArn, ...message }
      }
    case "copy":
      return {
        ...common,
        "detail-type": "Copy Job State Change",
        resources: [`arn:aws:ec2:us-east-1::snapshot/snap-${options.jobId}`],
        detail: {
          copyJobId: options.jobId,
          state: options.state,
          resourceType: "EBS",
          resourceArn,
          sourceBackupVaultArn: vaultArn,
          destinationBackupVaultArn: `arn:aws:backup:us-west-2:${account}:backup-vault:dr`,
          ...message
        }
      }
    case "restore":
      return {
        ...common,
        "detail-type": "Restore Job State Change",
        resources: [`arn:aws:ec2:us-east-1::snapshot/snap-${options.jobId}`],
        detail: { restoreJobId: options.jobId, status: options.state, resourceType: "EBS", backupVaultArn: vaultArn, sourceResourceArn: resourceArn, ...message }
      }
  }
}
