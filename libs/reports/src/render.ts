import { Schema } from "effect"
import type { DrillRecord } from "@backup-actions/ledger"
import { DrillRow, drillRows, formatRto } from "./drills"
import { ActionKind, ReportEntry } from "./entry"
import { formatBytes, formatDuration } from "./format"
import { AWS_BACKUP_JOB_KINDS, AwsBackupJobsSection, compareJobStates, summarizeJobs, type AwsBackupJobEntry } from "./jobs"

export const ReportPeriod = Schema.Literal("run", "day")
export type ReportPeriod = typeof ReportPeriod.Type

export const ActionTotals = Schema.Struct({
  kind: ActionKind,
  action: Schema.String,
  total: Schema.Number,
  succeeded: Schema.Number,
  failed: Schema.Number,
  bytesRead: Schema.Number,
  bytesStored: Schema.Number,
  durationMs: Schema.Number
})
export type ActionTotals = typeof ActionTotals.Type

export const NewestReplica = Schema.Struct({
  source: Schema.String,
  account: Schema.String,
  region: Schema.String,
  replicaArn: Schema.String,
  /** How old the replica's data is now: its age when it finished plus the time since. */
  ageSeconds: Schema.Number
})
export type NewestReplica = typeof NewestReplica.Type

/**
 * Everything a report says, computed once and written as JSON, CSV and HTML. The JSON file is
 * this schema's encoding, which is how the CLI and other readers decode it.
 */
export const ReportSummary = Schema.Struct({
  period: ReportPeriod,
  title: Schema.String,
  generatedAt: Schema.String,
  total: Schema.Number,
  succeeded: Schema.Number,
  failed: Schema.Number,
  bytesRead: Schema.Number,
  bytesStored: Schema.Number,
  actions: Schema.Array(ActionTotals),
  failures: Schema.Array(
    Schema.Struct({ recoveryPoint: Schema.String, action: Schema.String, time: Schema.String, reason: Schema.optional(Schema.String) })
  ),
  newestReplicas: Schema.Array(NewestReplica),
  entries: Schema.Array(ReportEntry),
  /** AWS Backup's own jobs in the report's span. Reports written before the reporter followed them have none. */
  awsBackupJobs: Schema.optional(AwsBackupJobsSection),
  /** Each protected resource's last restore drill, failed ones first. Reports without drills (or written before them) have none. */
  drills: Schema.optional(Schema.Array(DrillRow))
})
export type ReportSummary = typeof ReportSummary.Type

const KINDS: ReadonlyArray<ActionKind> = ["restore", "archive", "export", "replicate"]

const byTime = (left: ReportEntry, right: ReportEntry): number => left.time.localeCompare(right.time) || left.idempotencyKey.localeCompare(right.idempotencyKey)

/**
 * Adds up a set of outcomes, with `jobs` the AWS Backup jobs section, and with `drills` (each
 * resource's last drill, whenever it ran) the restore drills section. Entries are sorted by
 * time so that the same input gives the same report.
 */
export const summarize = (options: {
  readonly period: ReportPeriod
  readonly title: string
  readonly generatedAtMs: number
  readonly entries: ReadonlyArray<ReportEntry>
  readonly jobs?: ReadonlyArray<AwsBackupJobEntry>
  readonly drills?: ReadonlyArray<DrillRecord> | undefined
}): ReportSummary => {
  const entries = [...options.entries].sort(byTime)
  const actions = new Map<string, ActionTotals>()
  for (const entry of entries) {
    const before = actions.get(entry.action) ?? {
      kind: entry.kind,
      action: entry.action,
      total: 0,
      succeeded: 0,
      failed: 0,
      bytesRead: 0,
      bytesStored: 0,
      durationMs: 0
    }
    actions.set(entry.action, {
      ...before,
      total: before.total + 1,
      succeeded: before.succeeded + (entry.status === "succeeded" ? 1 : 0),
      failed: before.failed + (entry.status === "failed" ? 1 : 0),
      bytesRead: before.bytesRead + (entry.bytesRead ?? 0),
      bytesStored: before.bytesStored + (entry.bytesStored ?? 0),
      durationMs: before.durationMs + (entry.durationMs ?? 0)
    })
  }
  const newest = new Map<string, { entry: ReportEntry; ageSeconds: number }>()
  for (const entry of entries) {
    if (entry.kind !== "replicate" || entry.status !== "succeeded" || entry.sourceArn === undefined) continue
    const sinceSeconds = Math.max(0, (options.generatedAtMs - Date.parse(entry.time)) / 1000)
    const ageSeconds = Math.round((entry.replicaAgeSeconds ?? 0) + sinceSeconds)
    const known = newest.get(entry.sourceArn)
    if (known === undefined || known.ageSeconds > ageSeconds) newest.set(entry.sourceArn, { entry, ageSeconds })
  }
  const drills = drillRows(options.drills ?? [])
  const sum = (pick: (entry: ReportEntry) => number | undefined) => entries.reduce((total, entry) => total + (pick(entry) ?? 0), 0)
  return {
    period: options.period,
    title: options.title,
    generatedAt: new Date(options.generatedAtMs).toISOString(),
    total: entries.length,
    succeeded: entries.filter((entry) => entry.status === "succeeded").length,
    failed: entries.filter((entry) => entry.status === "failed").length,
    bytesRead: sum((entry) => entry.bytesRead),
    bytesStored: sum((entry) => entry.bytesStored),
    actions: [...actions.values()].sort((left, right) => KINDS.indexOf(left.kind) - KINDS.indexOf(right.kind) || left.action.localeCompare(right.action)),
    failures: entries
      .filter((entry) => entry.status === "failed")
      .map((entry) => ({ recoveryPoint: entry.recoveryPoint, action: entry.action, time: entry.time, reason: entry.reason })),
    newestReplicas: [...newest.entries()]
      .map(([source, { entry, ageSeconds }]) => ({
        source,
        account: entry.replicaAccount ?? "",
        region: entry.replicaRegion ?? "",
        replicaArn: entry.location ?? "",
        ageSeconds
      }))
      .sort((left, right) => left.source.localeCompare(right.source)),
    entries,
    ...(options.jobs === undefined ? {} : { awsBackupJobs: summarizeJobs(options.jobs) }),
    ...(drills.length === 0 ? {} : { drills })
  }
}

const encodeSummary = Schema.encodeSync(ReportSummary)

export const toJson = (summary: ReportSummary): string => `${JSON.stringify(encodeSummary(summary), null, 2)}\n`

const CSV_COLUMNS = [
  "time",
  "recovery_point",
  "kind",
  "action",
  "status",
  "duration_ms",
  "bytes_read",
  "bytes_stored",
  "location",
  "replica_account",
  "replica_region",
  "replica_age_seconds",
  "reason",
  // AWS Backup jobs' rows only (kind "aws-backup"); appended so that the columns before keep their places.
  "job_id",
  "job_state",
  "backup_vault",
  "resource_arn",
  // Restore drills' rows only (kind "drill"), appended likewise.
  "rto_seconds",
  "scratch_deleted"
] as const

/** RFC 4180: quote a field that holds a comma, a quote or a line break; double the quotes. */
const csvField = (value: string | number | undefined): string => {
  const text = value === undefined ? "" : String(value)
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text
}

/** One cell per column, so that a row cannot have more or fewer cells than the header. */
type Cells<Columns extends ReadonlyArray<string>> = { readonly [Column in keyof Columns]: string | number | undefined }
type CsvRow = Cells<typeof CSV_COLUMNS>

const outcomeRow = (entry: ReportEntry): CsvRow => [
  entry.time,
  entry.recoveryPoint,
  entry.kind,
  entry.action,
  entry.status,
  entry.durationMs,
  entry.bytesRead,
  entry.bytesStored,
  entry.location,
  entry.replicaAccount,
  entry.replicaRegion,
  entry.replicaAgeSeconds,
  entry.reason,
  undefined,
  undefined,
  undefined,
  undefined,
  undefined,
  undefined
]

/** An AWS Backup job's row: the outcome columns that apply, then the job's own. */
const jobRow = (job: AwsBackupJobEntry): CsvRow => [
  job.time,
  job.recoveryPointArn,
  "aws-backup",
  `${job.kind}-job`,
  job.failed ? "failed" : "succeeded",
  job.durationMs,
  undefined,
  undefined,
  job.createdResourceArn ?? job.destinationRecoveryPointArn,
  undefined,
  undefined,
  undefined,
  job.reason,
  job.jobId,
  job.state,
  job.backupVault,
  job.resourceArn,
  undefined,
  undefined
]

/** A restore drill's row: when it started, its result as the status, the artifact it restored, its RTO and whether it left scratch. */
const drillRow = (drill: DrillRow): CsvRow => [
  drill.when,
  undefined,
  "drill",
  `drill:${drill.target}`,
  drill.result,
  undefined,
  undefined,
  undefined,
  drill.artifact,
  undefined,
  undefined,
  undefined,
  drill.reason,
  undefined,
  undefined,
  undefined,
  drill.resourceArn,
  drill.rtoSeconds,
  String(drill.scratchDeleted)
]

/** One row per outcome, then one per AWS Backup job, then one per restore drill, for spreadsheets. */
export const toCsv = (summary: ReportSummary): string =>
  [
    CSV_COLUMNS.join(","),
    ...summary.entries.map((entry) => outcomeRow(entry).map(csvField).join(",")),
    ...(summary.awsBackupJobs?.jobs ?? []).map((job) => jobRow(job).map(csvField).join(",")),
    ...(summary.drills ?? []).map((drill) => drillRow(drill).map(csvField).join(","))
  ].join("\r\n") + "\r\n"

const escapeHtml = (text: string): string =>
  text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;").replaceAll('"', "&quot;").replaceAll("'", "&#39;")

/** A horizontal bar chart as inline SVG: no script, no external file. */
const barChart = (title: string, bars: ReadonlyArray<{ readonly label: string; readonly value: number; readonly text: string }>): string => {
  if (bars.length === 0) return ""
  const rowHeight = 22
  const labelWidth = 260
  const barWidth = 420
  const max = Math.max(...bars.map((bar) => bar.value), 1)
  const height = bars.length * rowHeight + 8
  const rows = bars
    .map((bar, index) => {
      const y = index * rowHeight + 4
      const width = Math.max(1, Math.round((bar.value / max) * barWidth))
      return (
        `<text x="0" y="${y + 15}" class="label">${escapeHtml(bar.label)}</text>` +
        `<rect x="${labelWidth}" y="${y + 3}" width="${width}" height="${rowHeight - 8}" class="bar"/>` +
        `<text x="${labelWidth + width + 6}" y="${y + 15}" class="value">${escapeHtml(bar.text)}</text>`
      )
    })
    .join("")
  return (
    `<figure><figcaption>${escapeHtml(title)}</figcaption>` +
    `<svg role="img" aria-label="${escapeHtml(title)}" width="${labelWidth + barWidth + 120}" height="${height}" viewBox="0 0 ${labelWidth + barWidth + 120} ${height}">${rows}</svg></figure>`
  )
}

const shortName = (arn: string): string => arn.slice(arn.lastIndexOf("/") + 1).slice(-32)

const cell = (value: string | number | undefined): string => `<td>${escapeHtml(value === undefined ? "" : String(value))}</td>`

/**
 * The AWS Backup jobs section: a table of counts (a row per kind of job, a column per state)
 * and every failed job with AWS's reason.
 */
const jobsSection = (jobs: AwsBackupJobsSection): string => {
  const states = [...new Set(jobs.counts.map((count) => count.state))].sort(compareJobStates)
  const countOf = (kind: string, state: string): number => jobs.counts.find((count) => count.kind === kind && count.state === state)?.count ?? 0
  const counts =
    jobs.total === 0
      ? `<p>No AWS Backup job ended in this report.</p>`
      : `<table class="job-counts"><thead><tr><th>job</th>${states.map((state) => `<th>${escapeHtml(state)}</th>`).join("")}<th>total</th></tr></thead><tbody>${AWS_BACKUP_JOB_KINDS.map(
          (kind) =>
            `<tr data-kind="${kind}"><td>${kind}</td>${states
              .map((state) => `<td data-state="${escapeHtml(state)}">${countOf(kind, state)}</td>`)
              .join("")}<td data-state="total">${states.reduce((total, state) => total + countOf(kind, state), 0)}</td></tr>`
        ).join("")}</tbody></table>`
  const failures =
    jobs.failures.length === 0
      ? `<p class="ok">No AWS Backup job failed.</p>`
      : `<table class="job-failures"><thead><tr><th>time</th><th>job</th><th>state</th><th>job id</th><th>resource</th><th>vault</th><th>reason</th></tr></thead><tbody>${jobs.failures
          .map(
            (failure) =>
              `<tr class="failed">${cell(failure.time)}${cell(failure.kind)}${cell(failure.state)}${cell(failure.jobId)}${cell(failure.resourceArn ?? failure.recoveryPointArn)}${cell(failure.backupVault)}${cell(failure.reason)}</tr>`
          )
          .join("")}</tbody></table>`
  return `<section id="aws-backup-jobs" class="jobs"><h2>AWS Backup jobs</h2>${counts}<h3>Failed AWS Backup jobs</h3>${failures}</section>`
}

/**
 * The restore drills section: each resource's last drill, failed ones marked as failed steps are,
 * and scratch a drill left behind flagged, since it costs money until the sweep removes it.
 */
const drillsSection = (drills: ReadonlyArray<DrillRow>): string =>
  `<section id="restore-drills" class="drills"><h2>Restore drills</h2><table class="drills"><thead><tr><th>source</th><th>last drill</th><th>result</th><th>RTO</th><th>restored into</th><th>artifact</th><th>scratch</th><th>reason</th></tr></thead><tbody>${drills
    .map(
      (drill) =>
        `<tr class="${drill.result}" data-result="${drill.result}">${cell(drill.resourceArn)}${cell(drill.when)}${cell(drill.result)}` +
        `${cell(drill.rtoSeconds === undefined ? undefined : formatRto(drill.rtoSeconds))}${cell(drill.target)}${cell(drill.artifact)}` +
        `${drill.scratchDeleted ? cell("deleted") : `<td class="flag" data-scratch="left">not deleted</td>`}${cell(drill.reason)}</tr>`
    )
    .join("")}</tbody></table></section>`

/** A self-contained HTML page: summary, failures, AWS Backup jobs, restore drills, a table per action, charts of bytes and durations, replica ages. */
export const toHtml = (summary: ReportSummary): string => {
  const jobs = summary.awsBackupJobs
  const cards = [
    ["outcomes", String(summary.total)],
    ["succeeded", String(summary.succeeded)],
    ["failed", String(summary.failed)],
    ["bytes read", formatBytes(summary.bytesRead)],
    ["bytes stored", formatBytes(summary.bytesStored)],
    ...(jobs === undefined
      ? []
      : [
          ["AWS Backup jobs", String(jobs.total)],
          ["AWS Backup jobs failed", String(jobs.failed)]
        ]),
    ...(summary.drills === undefined
      ? []
      : [
          ["restore drills", String(summary.drills.length)],
          ["restore drills failed", String(summary.drills.filter((drill) => drill.result === "failed").length)]
        ])
  ]
    .map(([label, value]) => `<div class="card" data-metric="${escapeHtml(label ?? "")}"><div class="number">${escapeHtml(value ?? "")}</div><div>${escapeHtml(label ?? "")}</div></div>`)
    .join("")
  const sections = KINDS.map((kind) => {
    const rows = summary.entries.filter((entry) => entry.kind === kind)
    if (rows.length === 0) return ""
    const body = rows
      .map(
        (entry) =>
          `<tr class="${entry.status}">${cell(entry.time)}${cell(shortName(entry.recoveryPoint))}${cell(entry.action)}${cell(entry.status)}` +
          `${cell(entry.durationMs === undefined ? undefined : formatDuration(entry.durationMs / 1000))}` +
          `${cell(entry.bytesRead === undefined ? undefined : formatBytes(entry.bytesRead))}` +
          `${cell(entry.bytesStored === undefined ? undefined : formatBytes(entry.bytesStored))}${cell(entry.location)}${cell(entry.reason)}</tr>`
      )
      .join("")
    return (
      `<section id="${kind}"><h2>${escapeHtml(kind)} (${rows.length})</h2><table><thead><tr><th>time</th><th>recovery point</th><th>action</th><th>status</th>` +
      `<th>duration</th><th>read</th><th>stored</th><th>artifact</th><th>reason</th></tr></thead><tbody>${body}</tbody></table></section>`
    )
  }).join("")
  const sized = summary.entries.filter((entry) => (entry.bytesStored ?? 0) > 0)
  const timed = summary.entries.filter((entry) => (entry.durationMs ?? 0) > 0)
  const charts =
    barChart(
      "Bytes stored per artifact",
      sized.map((entry) => ({ label: `${entry.action} ${shortName(entry.recoveryPoint)}`, value: entry.bytesStored ?? 0, text: formatBytes(entry.bytesStored ?? 0) }))
    ) +
    barChart(
      "Duration per step",
      timed.map((entry) => ({ label: `${entry.action} ${shortName(entry.recoveryPoint)}`, value: entry.durationMs ?? 0, text: formatDuration((entry.durationMs ?? 0) / 1000) }))
    )
  const failures =
    summary.failures.length === 0
      ? `<p class="ok">No failures.</p>`
      : `<table><thead><tr><th>time</th><th>recovery point</th><th>action</th><th>reason</th></tr></thead><tbody>${summary.failures
          .map((failure) => `<tr class="failed">${cell(failure.time)}${cell(failure.recoveryPoint)}${cell(failure.action)}${cell(failure.reason)}</tr>`)
          .join("")}</tbody></table>`
  const replicas =
    summary.newestReplicas.length === 0
      ? `<p>No replicas in this report.</p>`
      : `<table><thead><tr><th>source</th><th>account</th><th>region</th><th>newest replica</th><th>age</th></tr></thead><tbody>${summary.newestReplicas
          .map((replica) => `<tr>${cell(replica.source)}${cell(replica.account)}${cell(replica.region)}${cell(replica.replicaArn)}${cell(formatDuration(replica.ageSeconds))}</tr>`)
          .join("")}</tbody></table>`
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(summary.title)}</title>
<style>
body{font-family:system-ui,sans-serif;margin:2rem;color:#1d2330}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem}section h2{text-transform:capitalize}
.cards{display:flex;gap:1rem;flex-wrap:wrap}.card{border:1px solid #d0d5dd;border-radius:8px;padding:.75rem 1.25rem;min-width:8rem}
.number{font-size:1.6rem;font-weight:600}
table{border-collapse:collapse;width:100%;font-size:.85rem}th,td{border-bottom:1px solid #e4e7ec;padding:.3rem .5rem;text-align:left;vertical-align:top}
tr.failed td{background:#fdecec}.ok{color:#067647}
h3{font-size:1rem;margin-top:1.25rem}section.jobs h2{text-transform:none}.job-counts{width:auto}.job-counts td,.job-counts th{text-align:right}.job-counts td:first-child,.job-counts th:first-child{text-align:left}
section.drills h2{text-transform:none}tr.skipped td{color:#667085}td.flag{color:#b42318;font-weight:600}
figure{margin:1rem 0}figcaption{font-weight:600;margin-bottom:.25rem}
svg .bar{fill:#2e90fa}svg .label,svg .value{font-size:12px;fill:#1d2330}
</style></head>
<body>
<h1>${escapeHtml(summary.title)}</h1>
<p>Generated ${escapeHtml(summary.generatedAt)}.</p>
<div class="cards">${cards}</div>
<h2>Failures</h2>${failures}
${jobs === undefined ? "" : jobsSection(jobs)}
${summary.drills === undefined || summary.drills.length === 0 ? "" : drillsSection(summary.drills)}
<h2>Charts</h2>${charts === "" ? "<p>Nothing to chart.</p>" : charts}
${sections}
<h2>Newest replica per source</h2>${replicas}
</body></html>
`
}
