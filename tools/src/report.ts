/** Formatting for the demo's and the benchmark's tables. */

export { formatBytes } from "@backup-actions/reports"

export const formatRate = (bytes: number, millis: number): string =>
  millis <= 0 ? "-" : `${((bytes / (1024 * 1024)) / (millis / 1000)).toFixed(1)} MiB/s`

/** A plain-text table with aligned columns. */
export const table = (header: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>): string => {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => (row[column] ?? "").length)))
  const line = (cells: ReadonlyArray<string>) => cells.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join("  ").trimEnd()
  return [line(header), line(widths.map((width) => "-".repeat(width))), ...rows.map(line)].join("\n")
}
