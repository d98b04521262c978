import { Effect, Layer, Option } from "effect"
import { dayOf, jobKeyOf, type AwsBackupJobEntry, type RecordingWindow, type ReportEntry } from "@backup-actions/reports"
import { OutcomeBook, type OutcomeBookShape, type RecordedEntry } from "../book"
import { AwsBackupJobBook, type AwsBackupJobBookShape, type RecordedJob } from "../job-book"

/** Rows recorded by day, read back as the DynamoDB books read them: the given days, within the window when one is given. */
const dayRows = <Row extends { readonly recordedAt: number }>() => {
  const days = new Map<string, Map<string, Row>>()
  return {
    days,
    put: (day: string, key: string, row: Row) => void days.set(day, (days.get(day) ?? new Map<string, Row>()).set(key, row)),
    read: (wanted: ReadonlyArray<string>, window: RecordingWindow | undefined): ReadonlyArray<Row> =>
      wanted.flatMap((day) => [...(days.get(day)?.values() ?? [])].filter((row) => window === undefined || (row.recordedAt > window.afterMs && row.recordedAt <= window.untilMs)))
  }
}

/**
 * The reporter's outcome book in memory, with the conditions of the DynamoDB one (book.ts): an
 * outcome is recorded only when it is newer than the one there, and the run's times only move
 * forward. For tests of the reporter's decisions that need no AWS endpoint; `markers` (by
 * idempotency key) and `rows` (by day) are what it holds, to look at.
 */
export const makeMemoryOutcomeBook = () => {
  const markers = new Map<string, { readonly time: string; readonly status: string; notified: boolean }>()
  const rows = dayRows<RecordedEntry>()
  const run: { lastRecordedAt?: number; lastReportedAt?: number; pendingSince?: number } = {}
  const shape: OutcomeBookShape = {
    record: (entry: ReportEntry, recordedAt) =>
      Effect.sync(() => {
        const marker = markers.get(entry.idempotencyKey)
        const isNew = marker === undefined || marker.time < entry.time
        if (isNew) {
          markers.set(entry.idempotencyKey, { time: entry.time, status: entry.status, notified: false })
          rows.put(dayOf(recordedAt), entry.idempotencyKey, { entry, recordedAt })
        }
        if (entry.status !== "failed") return { isNew, needsNotification: false }
        const latest = markers.get(entry.idempotencyKey)
        return { isNew, needsNotification: latest !== undefined && latest.time === entry.time && latest.status === "failed" && !latest.notified }
      }),
    markNotified: (entry) =>
      Effect.sync(() => {
        const marker = markers.get(entry.idempotencyKey)
        if (marker !== undefined && marker.time === entry.time) marker.notified = true
      }),
    entries: (days, window) => Effect.sync(() => rows.read(days, window)),
    runState: Effect.sync(() => ({
      lastRecordedAt: run.lastRecordedAt ?? 0,
      lastReportedAt: Option.fromNullable(run.lastReportedAt),
      pendingSince: Option.fromNullable(run.pendingSince)
    })),
    noteRecorded: (recordedAt) =>
      Effect.sync(() => {
        if (run.lastRecordedAt !== undefined && run.lastRecordedAt >= recordedAt) return
        run.lastRecordedAt = recordedAt
        run.pendingSince ??= recordedAt
      }),
    claimRun: (untilMs, { stillPending }) =>
      Effect.sync(() => {
        if (run.lastReportedAt !== undefined && run.lastReportedAt >= untilMs) return false
        run.lastReportedAt = untilMs
        if (stillPending) run.pendingSince = untilMs
        else delete run.pendingSince
        return true
      })
  }
  return { markers, rows: rows.days, run, book: shape, layer: Layer.succeed(OutcomeBook, shape) }
}

/**
 * The reporter's book of AWS Backup's jobs in memory, with the conditions of the DynamoDB one
 * (job-book.ts): a job's state is recorded once, and a failure is announced until it is marked.
 * `markers` (by job key) and `rows` (by day) are what it holds, to look at.
 */
export const makeMemoryAwsBackupJobBook = () => {
  const markers = new Map<string, { notified: boolean }>()
  const rows = dayRows<RecordedJob>()
  const shape: AwsBackupJobBookShape = {
    record: (job: AwsBackupJobEntry, recordedAt) =>
      Effect.sync(() => {
        const key = jobKeyOf(job)
        const marker = markers.get(key)
        if (marker === undefined) {
          markers.set(key, { notified: false })
          rows.put(dayOf(recordedAt), key, { job, recordedAt })
        }
        if (!job.failed) return { isNew: marker === undefined, needsNotification: false }
        return { isNew: marker === undefined, needsNotification: marker === undefined || !marker.notified }
      }),
    markNotified: (job) =>
      Effect.sync(() => {
        const marker = markers.get(jobKeyOf(job))
        if (marker !== undefined) marker.notified = true
      }),
    jobs: (days, window) => Effect.sync(() => rows.read(days, window))
  }
  return { markers, rows: rows.days, book: shape, layer: Layer.succeed(AwsBackupJobBook, shape) }
}
