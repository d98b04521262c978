import { PutObjectCommand } from "@aws-sdk/client-s3"
import { Context, Effect, Layer } from "effect"
import { AwsError, S3, awsCall } from "@backup-actions/aws"
import { ServiceSettings } from "@backup-actions/config"
import type { S3Location } from "@backup-actions/contracts"
import { toCsv, toHtml, toJson, type ReportSummary } from "@backup-actions/reports"

export interface StoredReport {
  readonly json: S3Location
  readonly csv: S3Location
  readonly html: S3Location
}

/** Where a report's files go: `reports/runs/<run>/` or `reports/daily/<yyyy-mm-dd>/`. */
export const reportPrefix = (period: "run" | "day", name: string): string => (period === "run" ? `reports/runs/${name}/` : `reports/daily/${name}/`)

/** A run's name from when it ended: sortable and safe in a key, e.g. 20261122T101500123Z. */
export const runName = (untilMs: number): string => new Date(untilMs).toISOString().replace(/[-:.]/g, "")

export interface ReportStoreShape {
  readonly write: (prefix: string, summary: ReportSummary) => Effect.Effect<StoredReport, AwsError>
}

/** Writes a report's three files to the artifact bucket, each with a SHA-256 that S3 checks. */
export class ReportStore extends Context.Tag("backup-actions/ReportStore")<ReportStore, ReportStoreShape>() {
  static readonly Live = Layer.effect(
    ReportStore,
    Effect.gen(function* () {
      const s3 = yield* S3
      const { artifactBucket } = yield* ServiceSettings
      const put = (key: string, body: string, contentType: string) =>
        awsCall("s3:PutObject", (abortSignal) =>
          s3.send(new PutObjectCommand({ Bucket: artifactBucket, Key: key, Body: body, ContentType: contentType, ChecksumAlgorithm: "SHA256" }), {
            abortSignal
          })
        ).pipe(Effect.as({ bucket: artifactBucket, key }))
      return {
        write: (prefix, summary) =>
          Effect.all(
            {
              json: put(`${prefix}report.json`, toJson(summary), "application/json"),
              csv: put(`${prefix}report.csv`, toCsv(summary), "text/csv; charset=utf-8"),
              html: put(`${prefix}report.html`, toHtml(summary), "text/html; charset=utf-8")
            },
            { concurrency: 3 }
          )
      }
    })
  )
}
