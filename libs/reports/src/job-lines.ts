import type { AwsBackupJobFailure, AwsBackupJobKind, AwsBackupJobsSection } from "./jobs"

/** How one reader words the AWS Backup jobs section: its heading, a line per kind of job, a line per failed job. */
export interface JobLinesWording {
  readonly heading: string
  /** `states` is that kind's counts, "3 COMPLETED, 1 FAILED", in the section's order. */
  readonly kind: (kind: AwsBackupJobKind, states: string) => string
  readonly failure: (failure: AwsBackupJobFailure) => string
}

/** The AWS Backup jobs section as text lines: a blank line, the heading, one line per kind of job with its states, then each failed job. */
export const jobLines = (jobs: AwsBackupJobsSection, wording: JobLinesWording): ReadonlyArray<string> => {
  const kinds = [...new Set(jobs.counts.map((count) => count.kind))]
  return [
    "",
    wording.heading,
    ...kinds.map((kind) =>
      wording.kind(
        kind,
        jobs.counts
          .filter((count) => count.kind === kind)
          .map((count) => `${count.count} ${count.state}`)
          .join(", ")
      )
    ),
    ...(jobs.failures.length === 0 ? [] : ["", "Failed AWS Backup jobs:", ...jobs.failures.map(wording.failure)])
  ]
}
