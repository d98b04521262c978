import { assert, describe, it } from "@effect/vitest"
import { jobLines, type JobLinesWording } from "./job-lines"
import type { AwsBackupJobsSection } from "./jobs"

const wording: JobLinesWording = {
  heading: "jobs",
  kind: (kind, states) => `${kind}: ${states}`,
  failure: (failure) => `${failure.jobId} ${failure.reason ?? "-"}`
}

describe("the AWS Backup jobs section as lines", () => {
  it("gives one line per kind with its states in the section's order, then the failures", () => {
    // Prepare
    const jobs: AwsBackupJobsSection = {
      total: 4,
      failed: 1,
      counts: [
        { kind: "backup", state: "COMPLETED", count: 2 },
        { kind: "copy", state: "COMPLETED", count: 1 },
        { kind: "backup", state: "FAILED", count: 1 }
      ],
      failures: [{ kind: "backup", jobId: "job-1", state: "FAILED", time: "2026-11-22T10:00:00Z", reason: "no access" }],
      jobs: []
    }
    // Act
    const lines = jobLines(jobs, wording)
    // Assess
    assert.deepStrictEqual(lines, ["", "jobs", "backup: 2 COMPLETED, 1 FAILED", "copy: 1 COMPLETED", "", "Failed AWS Backup jobs:", "job-1 no access"])
  })

  it("leaves the failures out when no job failed", () => {
    // Prepare
    const jobs: AwsBackupJobsSection = { total: 1, failed: 0, counts: [{ kind: "restore", state: "COMPLETED", count: 1 }], failures: [], jobs: [] }
    // Act
    const lines = jobLines(jobs, wording)
    // Assess
    assert.deepStrictEqual(lines, ["", "jobs", "restore: 1 COMPLETED"])
  })
})
