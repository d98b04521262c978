import { Schema } from "effect"
import { DrillRecord } from "@backup-actions/ledger"

const { resourceArn, artifact, target, result, rtoSeconds, reason, scratchDeleted } = DrillRecord.fields

/**
 * A protected resource's last restore drill as a report shows it: the ledger's record with its
 * start as an ISO time, so that the report reads the same as its other times and the CLI, which
 * decodes the JSON, needs nothing of the ledger's encoding.
 */
export const DrillRow = Schema.Struct({
  resourceArn,
  /** s3://bucket/key of the artifact drilled. */
  artifact,
  target,
  result,
  /** When the drill started. */
  when: Schema.String,
  rtoSeconds,
  reason,
  scratchDeleted
})
export type DrillRow = typeof DrillRow.Type

/** Failed drills first, as they need someone; then by resource, so that the same drills give the same report. */
const byAttention = (left: DrillRow, right: DrillRow): number =>
  Number(right.result === "failed") - Number(left.result === "failed") || left.resourceArn.localeCompare(right.resourceArn) || left.when.localeCompare(right.when)

/**
 * One row per protected resource: its newest drill. The ledger keeps one latest drill per
 * resource already; a second one given for a resource (a record read from its history) does not
 * make a second row.
 */
export const drillRows = (drills: ReadonlyArray<DrillRecord>): ReadonlyArray<DrillRow> => {
  const newest = new Map<string, DrillRecord>()
  for (const drill of drills) {
    const known = newest.get(drill.resourceArn)
    if (known === undefined || known.startedAt <= drill.startedAt) newest.set(drill.resourceArn, drill)
  }
  return [...newest.values()]
    .map(
      (drill): DrillRow => ({
        resourceArn: drill.resourceArn,
        artifact: drill.artifact,
        target: drill.target,
        result: drill.result,
        when: new Date(drill.startedAt).toISOString(),
        ...(drill.rtoSeconds === undefined ? {} : { rtoSeconds: drill.rtoSeconds }),
        ...(drill.reason === undefined ? {} : { reason: drill.reason }),
        scratchDeleted: drill.scratchDeleted
      })
    )
    .sort(byAttention)
}

/**
 * A recovery time to the second up to an hour ("42 s", "3 min 5 s"), then to the minute: unlike
 * a step's duration, an RTO is held against an objective, where the minutes' seconds matter.
 */
export const formatRto = (seconds: number): string => {
  const total = Math.max(0, Math.round(seconds))
  if (total < 60) return `${total} s`
  const hours = Math.floor(total / 3_600)
  const minutes = Math.floor((total % 3_600) / 60)
  const rest = total % 60
  if (hours > 0) return minutes === 0 ? `${hours} h` : `${hours} h ${minutes} min`
  return rest === 0 ? `${minutes} min` : `${minutes} min ${rest} s`
}
