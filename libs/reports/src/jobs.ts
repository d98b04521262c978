import { Schema } from "effect"
import {
  isFailedJobState,
  restoreJobStatusOf,
  type BackupJobStateChange,
  type CopyJobStateChange,
  type EventOf,
  type RestoreJobStateChange
} from "@backup-actions/contracts"

/** AWS Backup's three kinds of job, one per job event. */
export const AwsBackupJobKind = Schema.Literal("backup", "copy", "restore")
export type AwsBackupJobKind = typeof AwsBackupJobKind.Type

export const AWS_BACKUP_JOB_KINDS: ReadonlyArray<AwsBackupJobKind> = ["backup", "copy", "restore"]

/**
 * One end state of one AWS Backup job as the reports show it, whichever event it came from.
 * Kept in the ledger table and read back when a report is built.
 */
export const AwsBackupJobEntry = Schema.Struct({
  kind: AwsBackupJobKind,
  jobId: Schema.String,
  /** AWS's state (backup and copy jobs) or status (restore jobs), e.g. COMPLETED or FAILED. */
  state: Schema.String,
  /** FAILED, ABORTED, EXPIRED or PARTIAL. */
  failed: Schema.Boolean,
  /** When AWS Backup sent the event, ISO 8601. */
  time: Schema.String,
  account: Schema.optional(Schema.String),
  region: Schema.optional(Schema.String),
  resourceType: Schema.optional(Schema.String),
  /** What was backed up, copied, or restored from. */
  resourceArn: Schema.optional(Schema.String),
  /** The vault's name (or its ARN when the event names no vault by name); for copies, the source vault. */
  backupVault: Schema.optional(Schema.String),
  /** The recovery point the job made (backup), copied (copy) or restored (restore). */
  recoveryPointArn: Schema.optional(Schema.String),
  /** Copies: where the copy went. */
  destinationVault: Schema.optional(Schema.String),
  destinationRecoveryPointArn: Schema.optional(Schema.String),
  /** Restores: what the restore made. */
  createdResourceArn: Schema.optional(Schema.String),
  /** AWS's statusMessage: why a job failed, or the issues of a job that completed with some. */
  reason: Schema.optional(Schema.String),
  durationMs: Schema.optional(Schema.Number),
  bytes: Schema.optional(Schema.Number)
})
export type AwsBackupJobEntry = typeof AwsBackupJobEntry.Type

export type AwsBackupJobEvent = EventOf<typeof BackupJobStateChange> | EventOf<typeof CopyJobStateChange> | EventOf<typeof RestoreJobStateChange>

/** Stable per job and state: a replayed or repeated event of the same job in the same state has the same key. */
export const jobKeyOf = (entry: Pick<AwsBackupJobEntry, "kind" | "jobId" | "state">): string => `${entry.kind}#${entry.jobId}#${entry.state}`

/** AWS Backup quotes some status messages inside the string (`"\"Backup job failed ...\""`); the quotes go. */
export const statusMessageText = (message: string | undefined): string | undefined => {
  const trimmed = message?.trim()
  if (trimmed === undefined || trimmed === "") return undefined
  return trimmed.length >= 2 && trimmed.startsWith('"') && trimmed.endsWith('"') ? trimmed.slice(1, -1).trim() : trimmed
}

/** A vault's name from its ARN (`arn:aws:backup:<region>:<account>:backup-vault:<name>`), else the ARN. */
export const vaultNameOf = (arn: string | undefined): string | undefined => {
  if (arn === undefined) return undefined
  const marker = ":backup-vault:"
  const at = arn.indexOf(marker)
  return at === -1 ? arn : arn.slice(at + marker.length)
}

/** An ARN-like string, or nothing: AWS Backup has sent `{}` for a copy that made no recovery point. */
const arnOrNothing = (value: unknown): string | undefined => (typeof value === "string" && value !== "" ? value : undefined)

const toNumber = (value: string | number | undefined): number | undefined => {
  if (value === undefined) return undefined
  const number = typeof value === "number" ? value : Number(value)
  return Number.isFinite(number) ? number : undefined
}

const durationOf = (creationDate: string | undefined, completionDate: string | undefined): number | undefined => {
  if (creationDate === undefined || completionDate === undefined) return undefined
  const duration = Date.parse(completionDate) - Date.parse(creationDate)
  return Number.isFinite(duration) && duration >= 0 ? duration : undefined
}

/** Turns any AWS Backup job event into the report's row for it. */
export const jobEntryOf = (event: AwsBackupJobEvent): AwsBackupJobEntry => {
  const envelope = { time: event.time, account: event.account, region: event.region }
  switch (event["detail-type"]) {
    case "Backup Job State Change": {
      const detail = event.detail
      return {
        ...envelope,
        kind: "backup",
        jobId: detail.backupJobId,
        state: detail.state,
        failed: isFailedJobState(detail.state),
        resourceType: detail.resourceType,
        resourceArn: detail.resourceArn,
        backupVault: detail.backupVaultName ?? detail.backupVaultArn,
        // resources[] names the recovery point once the job COMPLETED.
        recoveryPointArn: event.resources[0] ?? detail.recoveryPointArn,
        reason: statusMessageText(detail.statusMessage),
        durationMs: durationOf(detail.creationDate, detail.completionDate),
        bytes: toNumber(detail.backupSizeInBytes)
      }
    }
    case "Copy Job State Change": {
      const detail = event.detail
      return {
        ...envelope,
        kind: "copy",
        jobId: detail.copyJobId,
        state: detail.state,
        failed: isFailedJobState(detail.state),
        resourceType: detail.resourceType,
        resourceArn: detail.resourceArn,
        backupVault: vaultNameOf(detail.sourceBackupVaultArn),
        // resources[] names the source recovery point.
        recoveryPointArn: arnOrNothing(detail.sourceRecoveryPointArn) ?? event.resources[0],
        destinationVault: vaultNameOf(detail.destinationBackupVaultArn),
        destinationRecoveryPointArn: arnOrNothing(detail.destinationRecoveryPointArn),
        reason: statusMessageText(detail.statusMessage),
        durationMs: durationOf(detail.creationDate, detail.completionDate),
        bytes: toNumber(detail.backupSizeInBytes)
      }
    }
    case "Restore Job State Change": {
      const detail = event.detail
      const state = restoreJobStatusOf(detail)
      return {
        ...envelope,
        kind: "restore",
        jobId: detail.restoreJobId,
        state,
        failed: isFailedJobState(state),
        resourceType: detail.resourceType,
        resourceArn: detail.sourceResourceArn,
        backupVault: vaultNameOf(detail.backupVaultArn),
        recoveryPointArn: detail.recoveryPointArn ?? event.resources[0],
        createdResourceArn: detail.createdResourceArn,
        reason: statusMessageText(detail.statusMessage),
        durationMs: durationOf(detail.creationDate, detail.completionDate),
        bytes: toNumber(detail.backupSizeInBytes)
      }
    }
  }
}

export const AwsBackupJobCount = Schema.Struct({ kind: AwsBackupJobKind, state: Schema.String, count: Schema.Number })
export type AwsBackupJobCount = typeof AwsBackupJobCount.Type

export const AwsBackupJobFailure = Schema.Struct({
  kind: AwsBackupJobKind,
  jobId: Schema.String,
  state: Schema.String,
  time: Schema.String,
  resourceArn: Schema.optional(Schema.String),
  backupVault: Schema.optional(Schema.String),
  recoveryPointArn: Schema.optional(Schema.String),
  reason: Schema.optional(Schema.String)
})
export type AwsBackupJobFailure = typeof AwsBackupJobFailure.Type

/** The reports' "AWS Backup jobs" section: counts per kind of job and state, every failure with its reason, and every job. */
export const AwsBackupJobsSection = Schema.Struct({
  total: Schema.Number,
  failed: Schema.Number,
  counts: Schema.Array(AwsBackupJobCount),
  failures: Schema.Array(AwsBackupJobFailure),
  jobs: Schema.Array(AwsBackupJobEntry)
})
export type AwsBackupJobsSection = typeof AwsBackupJobsSection.Type

/** Where a state sorts in the counts: completed first, then the failures as AWS_BACKUP_JOB_FAILURE_STATES lists them. */
const STATE_ORDER = ["COMPLETED", "PARTIAL", "FAILED", "ABORTED", "EXPIRED"]
const stateRank = (state: string): number => {
  const rank = STATE_ORDER.indexOf(state)
  return rank === -1 ? STATE_ORDER.length : rank
}

/** Orders job states as the reports list them: COMPLETED, then the failures, then any other by name. */
export const compareJobStates = (left: string, right: string): number => stateRank(left) - stateRank(right) || left.localeCompare(right)

const byTime = (left: AwsBackupJobEntry, right: AwsBackupJobEntry): number => left.time.localeCompare(right.time) || jobKeyOf(left).localeCompare(jobKeyOf(right))

/** Adds up a set of job end states. Jobs are sorted by time so that the same input gives the same section. */
export const summarizeJobs = (entries: ReadonlyArray<AwsBackupJobEntry>): AwsBackupJobsSection => {
  const jobs = [...entries].sort(byTime)
  const counts = new Map<string, AwsBackupJobCount>()
  for (const job of jobs) {
    const key = `${job.kind}#${job.state}`
    const before = counts.get(key) ?? { kind: job.kind, state: job.state, count: 0 }
    counts.set(key, { ...before, count: before.count + 1 })
  }
  const failures = jobs
    .filter((job) => job.failed)
    .map((job) => ({
      kind: job.kind,
      jobId: job.jobId,
      state: job.state,
      time: job.time,
      resourceArn: job.resourceArn,
      backupVault: job.backupVault,
      recoveryPointArn: job.recoveryPointArn,
      reason: job.reason
    }))
  return {
    total: jobs.length,
    failed: failures.length,
    counts: [...counts.values()].sort(
      (left, right) =>
        AWS_BACKUP_JOB_KINDS.indexOf(left.kind) - AWS_BACKUP_JOB_KINDS.indexOf(right.kind) ||
        compareJobStates(left.state, right.state)
    ),
    failures,
    jobs
  }
}
