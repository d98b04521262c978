import { Schema } from "effect"

/** What a failover made: a DB instance, a DB cluster with its writer, or a volume. */
export const RestoredResource = Schema.Struct({
  kind: Schema.Literal("db-instance", "db-cluster", "volume"),
  /** The DB instance, DB cluster or volume. */
  id: Schema.String,
  /** A cluster's writer DB instance. */
  instanceId: Schema.optional(Schema.String),
  status: Schema.String,
  /** host:port; a cluster's writer endpoint. */
  endpoint: Schema.optional(Schema.String),
  availabilityZone: Schema.optional(Schema.String)
})
export type RestoredResource = typeof RestoredResource.Type

/**
 * What the CLI's `failover` reports, and what `failover --json` prints: one shape for the
 * command and for whoever reads its output (scripts, the end-to-end tests).
 */
export const FailoverResult = Schema.Struct({
  source: Schema.String,
  region: Schema.String,
  replica: Schema.Struct({
    id: Schema.String,
    arn: Schema.String,
    /** When the replica's source snapshot was taken (ISO 8601), when recorded. */
    sourceTakenAt: Schema.optional(Schema.String),
    createdAt: Schema.optional(Schema.String)
  }),
  restored: RestoredResource,
  /** Seconds from the source's snapshot (or, when that time is unknown, the replica's creation) to now. */
  rpoSeconds: Schema.Number,
  rpoFrom: Schema.Literal("source snapshot", "replica creation")
})
export type FailoverResult = typeof FailoverResult.Type
