import { AmiSweepDue, DigestDue, ReplicaCatchUpDue, SweepDue, type Contract } from "@backup-actions/contracts"
import type { ServiceName } from "./topology"

/** When a schedule fires: once a day at a UTC time, or every N minutes. */
export type Cadence =
  | { readonly every: "day"; readonly hourUtc: number; readonly minuteUtc: number }
  | { readonly every: "minutes"; readonly minutes: number }

/**
 * Scheduled work: EventBridge Scheduler sends the command to the service's queue in AWS; the
 * local runtime, where nothing is scheduled, fires the same commands itself.
 */
export interface ScheduledCommand {
  readonly name: string
  readonly service: ServiceName
  readonly cadence: Cadence
  readonly command: Contract<string, string, unknown>
  readonly detail: unknown
}

/** The schedules of the whole pipeline. */
export const SCHEDULES: ReadonlyArray<ScheduledCommand> = [
  // Yesterday's report and digest, shortly after midnight UTC.
  { name: "reporter-daily-digest", service: "reporter", cadence: { every: "day", hourUtc: 0, minuteUtc: 5 }, command: DigestDue, detail: {} },
  // Restored volumes that a crash left behind, deleted once six hours old.
  { name: "restorer-sweep", service: "restorer", cadence: { every: "minutes", minutes: 60 }, command: SweepDue, detail: { olderThanHours: 6 } },
  // DR replicas that the recovery-point events missed, over the last week.
  { name: "sharer-catch-up", service: "sharer", cadence: { every: "minutes", minutes: 360 }, command: ReplicaCatchUpDue, detail: { lookBackDays: 7 } },
  // AMIs old enough for their rule's olderThanDays that no event exported, once a day.
  { name: "exporter-ami-sweep", service: "exporter", cadence: { every: "day", hourUtc: 2, minuteUtc: 0 }, command: AmiSweepDue, detail: {} }
]

/** The EventBridge Scheduler expression of a cadence. */
export const scheduleExpression = (cadence: Cadence): string =>
  cadence.every === "day" ? `cron(${cadence.minuteUtc} ${cadence.hourUtc} * * ? *)` : `rate(${cadence.minutes} minutes)`

/** Milliseconds from `nowMs` to the cadence's next firing. */
export const millisUntilNext = (cadence: Cadence, nowMs: number): number => {
  if (cadence.every === "minutes") return cadence.minutes * 60_000
  const now = new Date(nowMs)
  const today = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate(), cadence.hourUtc, cadence.minuteUtc)
  return (today > nowMs ? today : today + 86_400_000) - nowMs
}
