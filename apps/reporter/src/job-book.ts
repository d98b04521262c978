import { randomUUID } from "node:crypto"
import { Context, Effect, Layer, Option, Schema } from "effect"
import { AwsError, DynamoDb } from "@backup-actions/aws"
import { ServiceSettings } from "@backup-actions/config"
import { AwsBackupJobEntry, dayOf, jobKeyOf, readDayRows, type RecordingWindow } from "@backup-actions/reports"
import { markNotified, readMarker, recordOnce, type RecordOnceBook } from "./record-once"

/** A recorded AWS Backup job state: the report row and when the reporter recorded it. */
export interface RecordedJob {
  readonly job: AwsBackupJobEntry
  readonly recordedAt: number
}

/**
 * The marker that makes a job's state recorded once, whatever day a replay comes on: one per
 * kind of job, job id and state. The day's row beside it is what reports read.
 */
const markerKey = (job: AwsBackupJobEntry) => ({ pk: `aws-backup-job#${jobKeyOf(job)}`, sk: "recorded" })
const dayKey = (day: string, job: AwsBackupJobEntry) => ({ pk: `aws-backup-jobs#${day}`, sk: jobKeyOf(job) })

const StoredJob = Schema.Struct({ job: AwsBackupJobEntry, recordedAt: Schema.Number })
const encodeJob = Schema.encodeSync(AwsBackupJobEntry)

const MarkerItem = Schema.Struct({ notified: Schema.optional(Schema.Boolean) })

/** A stored AWS Backup job record could not be read back as what this build writes. */
export class CorruptJobRecord extends Schema.TaggedError<CorruptJobRecord>()("CorruptJobRecord", {
  key: Schema.String,
  reason: Schema.String
}) {}

/**
 * Records a job's state once: the marker and the day's row are written together, and only
 * when the marker is not there yet, so a replayed or repeated event changes nothing. A
 * failure nobody was told about yet (also after a crash between recording and notifying)
 * needs its notification.
 */
export interface AwsBackupJobBookShape extends RecordOnceBook<AwsBackupJobEntry, CorruptJobRecord> {
  /** The jobs recorded in the given days, with a recording time in (afterMs, untilMs]. */
  readonly jobs: (days: ReadonlyArray<string>, window?: RecordingWindow) => Effect.Effect<ReadonlyArray<RecordedJob>, AwsError | CorruptJobRecord>
}

/** The reporter's record of AWS Backup's own jobs, in the ledger table beside the outcomes. */
export class AwsBackupJobBook extends Context.Tag("backup-actions/AwsBackupJobBook")<AwsBackupJobBook, AwsBackupJobBookShape>() {
  static readonly Live = Layer.effect(
    AwsBackupJobBook,
    Effect.gen(function* () {
      const dynamodb = yield* DynamoDb
      const { ledgerTable } = yield* ServiceSettings

      const record: AwsBackupJobBookShape["record"] = (job, recordedAt) =>
        Effect.gen(function* () {
          const day = dayOf(recordedAt)
          const written = yield* recordOnce(dynamodb, ledgerTable, {
            marker: { ...markerKey(job), time: job.time, state: job.state, day, notified: false },
            onlyIf: { expression: "attribute_not_exists(pk)" },
            row: { ...dayKey(day, job), job: encodeJob(job), recordedAt },
            // One token for every attempt of this write: a retry after a lost answer is the same write, not a lost race.
            clientRequestToken: randomUUID()
          })
          if (!job.failed) return { isNew: written, needsNotification: false }
          if (written) return { isNew: true, needsNotification: true }
          const marker = yield* readMarker(dynamodb, ledgerTable, markerKey(job), {
            schema: MarkerItem,
            corrupt: (reason) => new CorruptJobRecord({ key: jobKeyOf(job), reason })
          })
          return { isNew: false, needsNotification: Option.exists(marker, (item) => item.notified !== true) }
        })

      const jobs: AwsBackupJobBookShape["jobs"] = (days, window) =>
        readDayRows(
          dynamodb,
          ledgerTable,
          { partitionOf: (day) => `aws-backup-jobs#${day}`, schema: StoredJob, corrupt: (key, reason) => new CorruptJobRecord({ key, reason }) },
          days,
          window
        )

      return {
        record,
        markNotified: (job) => markNotified(dynamodb, ledgerTable, markerKey(job), { expression: "attribute_exists(pk)" }),
        jobs
      }
    })
  )
}
