import { Schema } from "effect"

const UNIT_MS = { m: 60_000, h: 3_600_000, d: 86_400_000 } as const

/** A period as a policy writes it: a whole number of minutes, hours or days ("30m", "12h", "7d"). */
export const Period = Schema.String.pipe(
  Schema.pattern(/^[1-9][0-9]{0,4}[mhd]$/, { message: () => `a period is a whole number then m, h or d, e.g. "7d"` })
)

/** The milliseconds of a period that `Period` accepted. */
export const periodMs = (period: string): number => Number(period.slice(0, -1)) * UNIT_MS[period.slice(-1) as keyof typeof UNIT_MS]

/**
 * Restore drills: how often the newest artifact of each protected resource is restored into
 * scratch and verified. `every` is the longest a resource may go without a drill; the scheduled
 * `drill` command runs those whose last drill is older (or that never had one).
 */
export const DrillPolicy = Schema.Struct({ every: Period })
export type DrillPolicy = typeof DrillPolicy.Type
