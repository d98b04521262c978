import type { DrillRecord } from "@backup-actions/ledger"
import { drillRows, formatRto, type DrillRow } from "@backup-actions/reports"

const columns = (drill: DrillRow): ReadonlyArray<string> => [
  drill.resourceArn,
  drill.when.replace(/\.\d+Z$/, "Z"),
  drill.target,
  drill.result + (drill.scratchDeleted ? "" : " (scratch left)"),
  drill.rtoSeconds === undefined ? "-" : formatRto(drill.rtoSeconds),
  drill.artifact
]

/**
 * Every source's last drill, one line each, in the reports' order (failed first): when, into
 * what, the result, the RTO and the artifact; then the reason of each drill that did not pass.
 */
export const drillTable = (drills: ReadonlyArray<DrillRecord>): string => {
  if (drills.length === 0) return "No restore drill recorded."
  const rows = drillRows(drills)
  const lines = [["source", "last drill", "into", "result", "RTO", "artifact"], ...rows.map(columns)]
  const widths = lines[0]?.map((_, column) => Math.max(...lines.map((line) => line[column]?.length ?? 0))) ?? []
  const text = lines.map((line) => line.map((cell, column) => (column === line.length - 1 ? cell : cell.padEnd(widths[column] ?? 0))).join("  "))
  const reasons = rows.filter((drill) => drill.reason !== undefined).map((drill) => `${drill.resourceArn}: ${drill.reason ?? ""}`)
  return [...text, ...(reasons.length === 0 ? [] : ["", ...reasons])].join("\n")
}
