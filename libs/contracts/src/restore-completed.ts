import { Schema } from "effect"
import { defineContract, OWNED_SOURCE, OwnedDetailFields } from "./contract"
import { ArchivePlan } from "./common"

/** The restorer made (or failed to make) a live copy of a recovery point. */
export const RestoreCompleted = defineContract({
  source: OWNED_SOURCE,
  detailType: "Restore Completed",
  versioned: true,
  detail: Schema.Struct({
    ...OwnedDetailFields,
    status: Schema.Literal("restored", "failed"),
    resourceType: Schema.String,
    backupVaultName: Schema.String,
    snapshotId: Schema.String,
    plan: ArchivePlan,
    volumeId: Schema.optional(Schema.String),
    availabilityZone: Schema.optional(Schema.String),
    reason: Schema.optional(Schema.String)
  })
})
