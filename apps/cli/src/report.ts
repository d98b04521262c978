import { writeFile, mkdtemp } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { GetObjectCommand, ListObjectsV2Command } from "@aws-sdk/client-s3"
import { Console, Effect, Either, Schema } from "effect"
import { S3, awsCall, type AwsError } from "@backup-actions/aws"
import { ReportSummary, formatBytes, formatRto, jobLines, type AwsBackupJobsSection, type DrillRow } from "@backup-actions/reports"
import type { ReportFormat } from "./args"
import { OperationFailed } from "./errors"
import { requireName } from "./stack"

const RUNS_PREFIX = "reports/runs/"

/** The folder of the newest run report: run names are the run's end time, so they sort by time. */
export const latestRunPrefix = (prefixes: ReadonlyArray<string>): string | undefined =>
  [...prefixes].filter((prefix) => prefix.startsWith(RUNS_PREFIX)).sort().at(-1)

/** report.json is the encoding of the reports library's ReportSummary, which the reporter writes. */
const decodeReport = Schema.decodeUnknownEither(Schema.parseJson(ReportSummary))

/** The AWS Backup jobs section for a terminal: one line per kind of job with its states, then each failed job with AWS's reason. */
const jobsAsText = (jobs: AwsBackupJobsSection | undefined): ReadonlyArray<string> =>
  jobs === undefined
    ? []
    : jobLines(jobs, {
        heading: `${jobs.total} AWS Backup jobs ended, ${jobs.failed} failed`,
        kind: (kind, states) => `  ${`${kind} jobs`.padEnd(20)} ${states}`,
        failure: (failure) =>
          `  ${failure.time}  ${failure.kind} job ${failure.jobId} ${failure.state}  ${failure.resourceArn ?? failure.recoveryPointArn ?? ""}${failure.backupVault === undefined ? "" : `  vault ${failure.backupVault}`}\n    ${failure.reason ?? "(no reason given)"}`
      })

/**
 * The restore drills section for a terminal: one line per resource's last drill, failed ones
 * first as the report has them, with the reason beneath and scratch a drill left behind named.
 */
const drillsAsText = (drills: ReadonlyArray<DrillRow> | undefined): ReadonlyArray<string> =>
  drills === undefined || drills.length === 0
    ? []
    : [
        "",
        `Restore drills: ${drills.length} resources, ${drills.filter((drill) => drill.result === "failed").length} failed`,
        ...drills.map(
          (drill) =>
            `  ${drill.when}  ${drill.result.padEnd(7)} ${drill.resourceArn}  ${drill.rtoSeconds === undefined ? "" : `RTO ${formatRto(drill.rtoSeconds)}  `}${drill.target} from ${drill.artifact}` +
            `${drill.scratchDeleted ? "" : "  scratch not deleted"}${drill.reason === undefined ? "" : `\n    ${drill.reason}`}`
        )
      ]

/** A report's summary for a terminal: the totals, one line per action, every failure with its reason, AWS Backup's jobs and the restore drills. */
export const reportAsText = (json: string, source: string): Either.Either<string, string> =>
  Either.map(
    Either.mapLeft(decodeReport(json), () => `${source} is not a report the CLI can read`),
    (report) =>
      [
        report.title,
        `generated ${report.generatedAt}; ${source}`,
        "",
        `${report.total} outcomes: ${report.succeeded} succeeded, ${report.failed} failed; read ${formatBytes(report.bytesRead)}, stored ${formatBytes(report.bytesStored)}`,
        ...report.actions.map(
          (action) => `  ${action.action.padEnd(20)} ${String(action.succeeded).padStart(4)} succeeded ${String(action.failed).padStart(4)} failed  ${formatBytes(action.bytesStored)} stored`
        ),
        ...(report.failures.length === 0
          ? []
          : ["", "Failures:", ...report.failures.map((failure) => `  ${failure.time}  ${failure.action}  ${failure.recoveryPoint}\n    ${failure.reason ?? "(no reason given)"}`)]),
        ...jobsAsText(report.awsBackupJobs),
        ...drillsAsText(report.drills)
      ].join("\n")
  )

const readText = (bucket: string, key: string) =>
  Effect.flatMap(S3, (s3) =>
    awsCall("s3:GetObject", async (abortSignal) => {
      const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }), { abortSignal })
      return object.Body === undefined ? "" : object.Body.transformToString()
    })
  )

/** Every run folder under reports/runs/, page by page. */
const runPrefixes = (bucket: string) =>
  Effect.gen(function* () {
    const s3 = yield* S3
    const prefixes: Array<string> = []
    let token: string | undefined
    do {
      const page = yield* awsCall("s3:ListObjectsV2", (abortSignal) =>
        s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: RUNS_PREFIX, Delimiter: "/", ContinuationToken: token }), { abortSignal })
      )
      for (const common of page.CommonPrefixes ?? []) if (common.Prefix !== undefined) prefixes.push(common.Prefix)
      token = page.IsTruncated === true ? page.NextContinuationToken : undefined
    } while (token !== undefined)
    return prefixes
  })

const notFound =
  (what: string) =>
  <A, R>(effect: Effect.Effect<A, AwsError, R>) =>
    Effect.catchIf(
      effect,
      (error) => error.kind === "not-found",
    (error) => Effect.fail(new OperationFailed({ message: `${what} does not exist (${error.code})` }))
  )

/** `report`: the latest run report or a day's, printed in the asked format; --open writes the HTML to a file. */
export const reportCommand = (options: { readonly day: string | undefined; readonly format: ReportFormat; readonly open: boolean }) =>
  Effect.gen(function* () {
    const bucket = yield* requireName("artifactBucket")
    const prefix =
      options.day === undefined ? latestRunPrefix(yield* runPrefixes(bucket)) : `reports/daily/${options.day}/`
    if (prefix === undefined) {
      return yield* new OperationFailed({ message: `no run report in s3://${bucket}/${RUNS_PREFIX} yet (the reporter writes one when a run goes quiet)` })
    }
    const what = options.day === undefined ? "the latest run report" : `the report of ${options.day}`
    if (options.open) {
      const key = `${prefix}report.html`
      const html = yield* readText(bucket, key).pipe(notFound(`${what} (s3://${bucket}/${key})`))
      const file = yield* Effect.tryPromise({
        try: async () => {
          const directory = await mkdtemp(join(tmpdir(), "backup-actions-report-"))
          const path = join(directory, "report.html")
          await writeFile(path, html)
          return path
        },
        catch: (error) => new OperationFailed({ message: `cannot write the HTML report to a temporary file: ${String(error)}` })
      })
      yield* Console.log(file)
      return
    }
    const key = `${prefix}report.${options.format === "text" ? "json" : options.format}`
    const body = yield* readText(bucket, key).pipe(notFound(`${what} (s3://${bucket}/${key})`))
    if (options.format !== "text") {
      yield* Console.log(body.replace(/\n$/, ""))
      return
    }
    const text = reportAsText(body, `s3://${bucket}/${key}`)
    if (Either.isLeft(text)) return yield* new OperationFailed({ message: text.left })
    yield* Console.log(text.right)
  })
