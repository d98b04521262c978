import { Schema } from "effect"
import type { ArchiveCompleted, EventOf, ExportCompleted, ReplicaCompleted, RestoreCompleted } from "@backup-actions/contracts"

/** The four kinds of work the pipeline reports on, one per owned outcome event. */
export const ActionKind = Schema.Literal("restore", "archive", "export", "replicate")
export type ActionKind = typeof ActionKind.Type

/**
 * One finished step as the reports show it: whatever event it came from, the same columns.
 * Kept in the ledger table and read back when a report is built.
 */
export const ReportEntry = Schema.Struct({
  idempotencyKey: Schema.String,
  recoveryPoint: Schema.String,
  kind: ActionKind,
  /** The step, e.g. `archive:direct` or `export:dynamodb`. */
  action: Schema.String,
  status: Schema.Literal("succeeded", "failed"),
  /** When the outcome happened (the event's time), ISO 8601. */
  time: Schema.String,
  durationMs: Schema.optional(Schema.Number),
  bytesRead: Schema.optional(Schema.Number),
  bytesStored: Schema.optional(Schema.Number),
  /** s3://bucket/key of the artifact. */
  location: Schema.optional(Schema.String),
  reason: Schema.optional(Schema.String),
  /** For replicas: where the copy lives and how old its data was when it finished. */
  replicaAccount: Schema.optional(Schema.String),
  replicaRegion: Schema.optional(Schema.String),
  replicaAgeSeconds: Schema.optional(Schema.Number),
  sourceArn: Schema.optional(Schema.String),
  /** The protected resource the recovery point is a backup of, so that its newest artifact can be found by it. */
  resourceArn: Schema.optional(Schema.String)
})
export type ReportEntry = typeof ReportEntry.Type

export type OutcomeEvent =
  | EventOf<typeof RestoreCompleted>
  | EventOf<typeof ArchiveCompleted>
  | EventOf<typeof ExportCompleted>
  | EventOf<typeof ReplicaCompleted>

/** The step's name as its idempotency key ends (`<recovery point>#<step>`), else the kind. */
const actionOf = (idempotencyKey: string, kind: ActionKind): string => {
  const separator = idempotencyKey.lastIndexOf("#")
  return separator === -1 || separator === idempotencyKey.length - 1 ? kind : idempotencyKey.slice(separator + 1)
}

/** The protected resource, when the event names it: no key at all otherwise, so that rows from events of earlier builds stay as they were stored. */
const protectedResource = (resourceArn: string | undefined) => (resourceArn === undefined ? {} : { resourceArn })

const s3Url = (location: { readonly bucket: string; readonly key: string } | undefined) => ({
  location: location === undefined ? undefined : `s3://${location.bucket}/${location.key}`
})

/** Turns any outcome event into the report's row for it. */
export const entryOf = (event: OutcomeEvent): ReportEntry => {
  const common = (kind: ActionKind, failed: boolean, reason: string | undefined): ReportEntry => ({
    idempotencyKey: event.detail.idempotencyKey,
    recoveryPoint: event.detail.correlationId,
    kind,
    action: actionOf(event.detail.idempotencyKey, kind),
    status: failed ? "failed" : "succeeded",
    time: event.time,
    reason
  })
  switch (event["detail-type"]) {
    case "Restore Completed":
      return { ...common("restore", event.detail.status === "failed", event.detail.reason), ...protectedResource(event.detail.resourceArn) }
    case "Archive Completed":
      return {
        ...common("archive", event.detail.status === "failed", event.detail.reason),
        durationMs: event.detail.durationMs,
        bytesRead: event.detail.bytesRead,
        bytesStored: event.detail.bytesStored,
        ...s3Url(event.detail.location),
        ...protectedResource(event.detail.resourceArn)
      }
    case "Export Completed":
      return {
        ...common("export", event.detail.status === "failed", event.detail.reason),
        durationMs: event.detail.durationMs,
        bytesStored: event.detail.bytesStored,
        ...s3Url(event.detail.location),
        ...protectedResource(event.detail.resourceArn)
      }
    case "Replica Completed":
      return {
        ...common("replicate", event.detail.status === "failed", event.detail.reason),
        sourceArn: event.detail.sourceArn,
        replicaAccount: event.detail.account,
        replicaRegion: event.detail.region,
        replicaAgeSeconds: event.detail.replicaAgeSeconds,
        location: event.detail.replicaArn
      }
  }
}
