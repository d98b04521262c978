import { Schema } from "effect"
import { defineContract } from "./contract"
import { AWS_BACKUP_SOURCE, BackupResourceType } from "./aws-backup"

/** AWS Backup sends some numbers as strings and some as numbers, even within one event. */
const numberish = Schema.optional(Schema.Union(Schema.String, Schema.Number))

/**
 * "Restore Job State Change", as AWS Backup documents it: unlike backup and copy jobs, a
 * restore job reports `status` (PENDING, RUNNING, COMPLETED, ABORTED, FAILED). Which fields
 * come depends on the job: a failed one may carry neither the recovery point nor the vault
 * (then `resources[]` names the recovery point), a completed one names what it created in
 * `createdResourceArn`. AWS's own sample of a CREATED job has `state` instead of `status`.
 */
export const RestoreJobStateChange = defineContract({
  source: AWS_BACKUP_SOURCE,
  detailType: "Restore Job State Change",
  versioned: false,
  detail: Schema.Struct({
    restoreJobId: Schema.String,
    status: Schema.optional(Schema.String),
    /** Only in AWS's sample of a CREATED job, in place of `status`. */
    state: Schema.optional(Schema.String),
    statusMessage: Schema.optional(Schema.String),
    resourceType: Schema.optional(BackupResourceType),
    recoveryPointArn: Schema.optional(Schema.String),
    backupVaultArn: Schema.optional(Schema.String),
    /** The resource that was backed up. */
    sourceResourceArn: Schema.optional(Schema.String),
    /** The resource the restore made, once COMPLETED. */
    createdResourceArn: Schema.optional(Schema.String),
    iamRoleArn: Schema.optional(Schema.String),
    creationDate: Schema.optional(Schema.String),
    completionDate: Schema.optional(Schema.String),
    percentDone: numberish,
    backupSizeInBytes: numberish,
    /** Set when the job belongs to a restore testing plan. */
    restoreTestingPlanArn: Schema.optional(Schema.String)
  })
})

/** The state of a restore job: `status`, or `state` where AWS sent that instead. */
export const restoreJobStatusOf = (detail: { readonly status?: string | undefined; readonly state?: string | undefined }): string =>
  detail.status ?? detail.state ?? "UNKNOWN"

/**
 * The job states that mean AWS Backup did not do what was asked: the job failed, was
 * stopped, did not start within its window, or (a parent job, or a resource with several
 * parts) finished only in part. Each is announced once.
 */
export const AWS_BACKUP_JOB_FAILURE_STATES = ["FAILED", "ABORTED", "EXPIRED", "PARTIAL"] as const

/**
 * The job states the reporter subscribes to: the end states (COMPLETED, counted in the
 * reports, and the failures above). The same list serves backup jobs (`state`), copy jobs
 * (`state`) and restore jobs (`status`); a state that one kind of job never reaches costs
 * nothing in a pattern. CREATED, PENDING, RUNNING and ABORTING never reach the reporter.
 */
export const AWS_BACKUP_JOB_END_STATES = ["COMPLETED", ...AWS_BACKUP_JOB_FAILURE_STATES] as const

export const isFailedJobState = (state: string): boolean => AWS_BACKUP_JOB_FAILURE_STATES.some((failure) => failure === state)
