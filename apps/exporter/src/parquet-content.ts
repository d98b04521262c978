import { createReadStream } from "node:fs"
import { createInterface } from "node:readline"
import { Effect } from "effect"
import { ContentSums, contentDifferences, readParquetContent, s3ParquetFile, type ColumnPlan, type ContentChecksum, type WireItem } from "@backup-actions/archive"
import type { Verification } from "@backup-actions/contracts"
import { SpoolFailed } from "./errors"

/**
 * The content checksum of the items as the scan returned them (the spool), taken apart from
 * the writer: it shares no code with it beyond the mapping of a value to its cell.
 */
export const sourceContent = (spoolFiles: ReadonlyArray<string>, columns: ReadonlyArray<ColumnPlan>) =>
  Effect.forEach(spoolFiles, (file) =>
    Effect.tryPromise({
      try: async (signal) => {
        const sums = new ContentSums(columns)
        const lines = createInterface({ input: createReadStream(file, { encoding: "utf8", signal }), crlfDelay: Infinity })
        for await (const line of lines) {
          if (line.length === 0) continue
          const item: WireItem = JSON.parse(line)
          sums.addSourceItem(item)
        }
        return sums
      },
      catch: (error) => new SpoolFailed({ path: file, reason: error instanceof Error ? error.message : String(error) })
    })
  ).pipe(
    Effect.map((segments) => {
      const total = new ContentSums(columns)
      for (const segment of segments) total.merge(segment)
      return total.checksum()
    })
  )

/** How the content check of an uploaded file ended: what the read-back found, and what differs. */
export interface ContentCheck {
  readonly verification: Verification
  /** Absent when the file could not be read back at all. */
  readonly readBack: ContentChecksum | undefined
  readonly problems: ReadonlyArray<string>
}

/**
 * Reads the uploaded file back from S3 with a Parquet reader that is not the writer, adds up
 * its items and column checksums, and compares them with the source's. Only when they agree
 * is the export verified to its content; a file that cannot be read is a difference too.
 */
export const checkUploadedContent = (options: {
  readonly bucket: string
  readonly key: string
  readonly columns: ReadonlyArray<ColumnPlan>
  readonly source: ContentChecksum
}) =>
  Effect.gen(function* () {
    const file = yield* s3ParquetFile(options.bucket, options.key)
    return yield* readParquetContent({ file, key: options.key, columns: options.columns }).pipe(
      Effect.map((readBack): ContentCheck => {
        const problems = contentDifferences(options.source, "the source", readBack, "the file read back")
        return { verification: problems.length === 0 ? "content" : "upload", readBack, problems }
      }),
      Effect.catchTag("ParquetUnreadable", (error) =>
        Effect.succeed<ContentCheck>({ verification: "upload", readBack: undefined, problems: [`the file cannot be read back as the export's Parquet: ${error.reason}`] })
      )
    )
  })
