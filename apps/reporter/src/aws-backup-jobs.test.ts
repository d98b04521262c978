import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { BackupJobStateChange, CopyJobStateChange, RestoreJobStateChange, restoreJobStatusOf } from "@backup-actions/contracts"
import { ROUTES } from "@backup-actions/config"
import { jobEntryOf, jobKeyOf } from "@backup-actions/reports"
import {
  backupJobAborted,
  backupJobCompleted,
  backupJobExpired,
  backupJobFailed,
  backupJobRunning,
  copyJobCompleted,
  copyJobFailed,
  restoreJobCompleted,
  restoreJobCreated,
  restoreJobFailed,
  restoreJobRunning
} from "./fixtures/aws-backup-job-events"
import { jobFailureMessage } from "./service"

describe("AWS Backup's documented job events", () => {
  it.effect("decodes a failed backup job with its reason, job, resource and vault, and no recovery point", () =>
    Effect.gen(function* () {
      // Act
      const event = yield* BackupJobStateChange.decode(backupJobFailed)
      const job = jobEntryOf(event)
      // Assess
      assert.deepStrictEqual(
        [job.kind, job.jobId, job.state, job.failed, job.backupVault, job.resourceArn, job.recoveryPointArn],
        [
          "backup",
          "34176239-e96d-4e1d-9fad-529dbb3c3556",
          "FAILED",
          true,
          "9ab3e749-82c6-4342-9320-5edbf4918b86",
          "arn:aws:service:us-west-2:1112233445566:resource-type/resource-id",
          undefined
        ]
      )
      assert.strictEqual(
        job.reason,
        "Backup job failed because backup vault arn:aws:backup:us-west-2:1112233445566:backup-vault:9ab3e749-82c6-4342-9320-5edbf4918b86 does not exist."
      )
      assert.deepStrictEqual([job.account, job.region, job.time], ["1112233445566", "us-west-2", "2020-07-29T20:15:26Z"])
    })
  )

  it.effect("decodes a completed backup job with its recovery point from resources[], its size and its duration", () =>
    Effect.gen(function* () {
      // Act
      const job = jobEntryOf(yield* BackupJobStateChange.decode(backupJobCompleted))
      // Assess
      assert.deepStrictEqual(
        [job.state, job.failed, job.recoveryPointArn, job.bytes, job.durationMs, job.reason],
        ["COMPLETED", false, "arn:aws:backup:us-west-2:1112233445566:recovery-point:f1d966fe-a3bd-410b-b292-99f442d13b56", 36_048, 34_714, undefined]
      )
    })
  )

  it.effect("counts aborted and expired backup jobs as failures, with AWS's reason unquoted", () =>
    Effect.gen(function* () {
      // Act
      const jobs = yield* Effect.forEach([backupJobAborted, backupJobExpired], (sample) => Effect.map(BackupJobStateChange.decode(sample), jobEntryOf))
      // Assess
      assert.deepStrictEqual(
        jobs.map((job) => [job.state, job.failed, job.reason]),
        [
          ["ABORTED", true, "Backup job was stopped by user."],
          ["EXPIRED", true, "Backup job failed because there was a running job for the same resource."]
        ]
      )
      assert.strictEqual(jobs[1]?.backupVault, "aws/backup/AutomatedBackupVaultDel2")
    })
  )

  it.effect("decodes a completed copy job with its source and destination", () =>
    Effect.gen(function* () {
      // Act
      const job = jobEntryOf(yield* CopyJobStateChange.decode(copyJobCompleted))
      // Assess
      assert.deepStrictEqual(
        [job.kind, job.jobId, job.state, job.failed, job.recoveryPointArn, job.destinationRecoveryPointArn, job.backupVault, job.destinationVault, job.bytes],
        [
          "copy",
          "0175DE71-5784-589F-D8AC-541ACCB4CAC8",
          "COMPLETED",
          false,
          "arn:aws:ec2:us-west-2::snapshot/snap-03886bc8d6ef3a1f9",
          "arn:aws:ec2:us-west-2::snapshot/snap-0726fe70935586180",
          "846869de-4589-45c3-ab60-4fbbabcdd3ec",
          "846869de-4589-45c3-ab60-4fbbabcdd3ec",
          3_221_225_472
        ]
      )
    })
  )

  // AWS documents a failed copy job with `"destinationRecoveryPointArn": {}`.
  it.effect("decodes a failed copy job whose destination recovery point AWS sends as {}", () =>
    Effect.gen(function* () {
      // Act
      const job = jobEntryOf(yield* CopyJobStateChange.decode(copyJobFailed))
      // Assess
      assert.deepStrictEqual(
        [job.state, job.failed, job.reason, job.destinationRecoveryPointArn],
        ["FAILED", true, "Access denied exception while trying to list tags", undefined]
      )
    })
  )

  it.effect("decodes a failed restore job, which says status, names its recovery point only in resources[] and gives its reason", () =>
    Effect.gen(function* () {
      // Act
      const event = yield* RestoreJobStateChange.decode(restoreJobFailed)
      const job = jobEntryOf(event)
      // Assess
      assert.strictEqual(event.detail.status, "FAILED")
      assert.deepStrictEqual(
        [job.kind, job.jobId, job.state, job.failed, job.recoveryPointArn, job.resourceType, job.bytes],
        ["restore", "1B234A56-789B-01CD-2A34-4567A08901FD", "FAILED", true, "arn:aws:ec2:us-west-2::image/ami-12b3456dfb7f8cf90", "EC2", 22_548_578_304]
      )
      assert.strictEqual(
        job.reason,
        "AWS Backup does not permit attaching a new instance profile to an EC2 instance. Please restore using the backed up instance profile."
      )
    })
  )

  it.effect("decodes a completed restore job with what it restored, from where, into what", () =>
    Effect.gen(function* () {
      // Act
      const event = yield* RestoreJobStateChange.decode(restoreJobCompleted)
      const job = jobEntryOf(event)
      // Assess
      assert.deepStrictEqual(
        [job.state, job.failed, job.recoveryPointArn, job.resourceArn, job.createdResourceArn, job.backupVault, job.durationMs],
        [
          "COMPLETED",
          false,
          "arn:aws:backup:us-west-2:1112233445566:recovery-point:6f7fc1f8-2f2e-40ac-943b-8f8efa9ba99d",
          "arn:aws:rds:us-west-2:1112233445566:db:example-database",
          "arn:aws:rds:us-west-2:1112233445566:db:testinginstance1a2bcd34-567e-8901-23f4-5g6hijkl7890",
          "ExampleVault",
          291_386
        ]
      )
      assert.strictEqual(event.detail.iamRoleArn, "arn:aws:iam::1112233445566:role/RestoreTestRole")
      assert.strictEqual(event.detail.percentDone, 0)
    })
  )

  it.effect("decodes the running and created restore jobs too, reading the created one's state", () =>
    Effect.gen(function* () {
      // Act
      const running = yield* RestoreJobStateChange.decode(restoreJobRunning)
      const created = yield* RestoreJobStateChange.decode(restoreJobCreated)
      // Assess
      assert.deepStrictEqual([restoreJobStatusOf(running.detail), restoreJobStatusOf(created.detail)], ["RUNNING", "CREATED"])
    })
  )

  it.effect("keys a job's state by kind, job and state, so that the samples sharing an event id stay apart", () =>
    Effect.gen(function* () {
      // Act
      const jobs = yield* Effect.forEach([restoreJobFailed, restoreJobCompleted, restoreJobRunning], (sample) => Effect.map(RestoreJobStateChange.decode(sample), jobEntryOf))
      // Assess: AWS's three samples share one event id; their keys differ
      assert.deepStrictEqual(jobs.map(jobKeyOf), [
        "restore#1B234A56-789B-01CD-2A34-4567A08901FD#FAILED",
        "restore#AB123456-78C9-0123-456D-789012E34567#COMPLETED",
        "restore#1B234A56-789B-01CD-2A34-4567A08901FD#RUNNING"
      ])
    })
  )
})

describe("the reporter's AWS Backup job routes", () => {
  it("narrows each rule to the jobs' end states, on the field each kind of job reports", () => {
    // Assess
    assert.deepStrictEqual(
      [ROUTES.reporter.backupJobs, ROUTES.reporter.copyJobs, ROUTES.reporter.restoreJobs].map((route) => route.contract.pattern(route.detailFilter)),
      [
        { source: ["aws.backup"], "detail-type": ["Backup Job State Change"], detail: { state: ["COMPLETED", "FAILED", "ABORTED", "EXPIRED", "PARTIAL"] } },
        { source: ["aws.backup"], "detail-type": ["Copy Job State Change"], detail: { state: ["COMPLETED", "FAILED", "ABORTED", "EXPIRED", "PARTIAL"] } },
        { source: ["aws.backup"], "detail-type": ["Restore Job State Change"], detail: { status: ["COMPLETED", "FAILED", "ABORTED", "EXPIRED", "PARTIAL"] } }
      ]
    )
  })
})

describe("announcing a failed AWS Backup job", () => {
  it.effect("names the job's state and the resource in the subject, and gives the reason first", () =>
    Effect.gen(function* () {
      // Prepare
      const job = jobEntryOf(yield* BackupJobStateChange.decode(backupJobExpired))
      // Act
      const { subject, message } = jobFailureMessage(job)
      // Assess
      assert.strictEqual(subject, "backup-actions: AWS Backup backup job EXPIRED for resource-id")
      assert.deepStrictEqual(message.split("\n").slice(0, 6), [
        "AWS Backup backup job EXPIRED.",
        "",
        "Reason: Backup job failed because there was a running job for the same resource.",
        "Job id: 01EE26DC-7107-4D8E-0C54-EAC27C662BA4",
        "Resource: arn:aws:service:us-west-2:1112233445566:resource-type/resource-id (type)",
        "Vault: aws/backup/AutomatedBackupVaultDel2"
      ])
    })
  )

  it.effect("says so when AWS Backup named no resource or gave no reason", () =>
    Effect.gen(function* () {
      // Prepare: a running job's sample turned FAILED, with no message
      const job = jobEntryOf(yield* BackupJobStateChange.decode({ ...backupJobRunning, detail: { backupJobId: "job-1", state: "FAILED" } }))
      // Act
      const { subject, message } = jobFailureMessage(job)
      // Assess
      assert.strictEqual(subject, "backup-actions: AWS Backup backup job FAILED")
      assert.include(message, "Reason: (AWS Backup gave none)")
      assert.include(message, "Resource: (not named in the event)")
    })
  )
})
