import { Effect, Layer } from "effect"
import type { ReportSummary } from "@backup-actions/reports"
import { ReportStore, type ReportStoreShape } from "../report-store"

/**
 * A report store that keeps each report's summary by its prefix (the last write wins, as an S3
 * put does) and says where the files would be: for tests of which reports the reporter writes.
 */
export const makeMemoryReportStore = (bucket = "reports") => {
  const written = new Map<string, ReportSummary>()
  const shape: ReportStoreShape = {
    write: (prefix, summary) =>
      Effect.sync(() => {
        written.set(prefix, summary)
        return {
          json: { bucket, key: `${prefix}report.json` },
          csv: { bucket, key: `${prefix}report.csv` },
          html: { bucket, key: `${prefix}report.html` }
        }
      })
  }
  return { written, store: shape, layer: Layer.succeed(ReportStore, shape) }
}
