/** Latencies summed up for the burst's table: how many, the median, the 99th percentile and the worst. */
export interface LatencySummary {
  readonly count: number
  readonly p50: number
  readonly p99: number
  readonly max: number
}

/**
 * The nearest-rank percentile of values sorted ascending: the smallest value that at least
 * `fraction` of them do not exceed. Always one of the values, never an interpolation, so that
 * a p99 of a few dozen samples reads as the sample it is.
 */
export const percentile = (sorted: ReadonlyArray<number>, fraction: number): number => {
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(fraction * sorted.length)))
  return sorted[rank - 1] ?? Number.NaN
}

/** The summary of the values in any order; none for no values. */
export const summarizeLatencies = (values: ReadonlyArray<number>): LatencySummary | undefined => {
  if (values.length === 0) return undefined
  const sorted = [...values].sort((left, right) => left - right)
  return { count: sorted.length, p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99), max: sorted[sorted.length - 1] ?? Number.NaN }
}

/** Milliseconds as seconds with two decimals, for a table cell. */
export const seconds = (millis: number): string => (millis / 1000).toFixed(2)
