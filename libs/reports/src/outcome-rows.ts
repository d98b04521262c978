import { Schema } from "effect"
import { ReportEntry } from "./entry"

/**
 * How the reporter keeps each outcome in the ledger table: one row per outcome under its day's
 * partition, with when the reporter recorded it. Reports are built from these rows, and the
 * restore drills find each resource's newest artifact in them.
 */
export const outcomeDayPartition = (day: string): string => `report#${day}`

export const RecordedOutcome = Schema.Struct({ entry: ReportEntry, recordedAt: Schema.Number })
export type RecordedOutcome = typeof RecordedOutcome.Type
