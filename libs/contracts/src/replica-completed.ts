import { Schema } from "effect"
import { defineContract, OWNED_SOURCE, OwnedDetailFields } from "./contract"

/** The sharer made (or failed to make) a DR copy in another account and/or region. */
export const ReplicaCompleted = defineContract({
  source: OWNED_SOURCE,
  detailType: "Replica Completed",
  versioned: true,
  detail: Schema.Struct({
    ...OwnedDetailFields,
    status: Schema.Literal("replicated", "failed"),
    sourceArn: Schema.String,
    replicaArn: Schema.optional(Schema.String),
    account: Schema.optional(Schema.String),
    region: Schema.optional(Schema.String),
    kmsKeyId: Schema.optional(Schema.String),
    /** How old the replica's data was when the replica completed: seconds since the source snapshot was taken. */
    replicaAgeSeconds: Schema.optional(Schema.Number),
    reason: Schema.optional(Schema.String),
    /** The policy rule that asked for the replica. */
    rule: Schema.optional(Schema.String),
    /** As AWS Backup names it: EBS, RDS, Aurora. */
    resourceType: Schema.optional(Schema.String),
    /** Older replicas of the same resource that retention deleted after this one completed. */
    prunedReplicaArns: Schema.optional(Schema.Array(Schema.String))
  })
})
