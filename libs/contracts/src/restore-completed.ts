import { Schema } from "effect"
import { defineContract, OWNED_SOURCE, OwnedDetailFields } from "./contract"
import { ArchivePlan } from "./common"

/**
 * A DB instance restored for an engine-native dump: where to reach it and as whom. The
 * password itself never travels in an event, only the name of the SSM parameter holding it.
 */
export const RestoredDatabase = Schema.Struct({
  instanceId: Schema.String,
  engine: Schema.String,
  engineVersion: Schema.String,
  address: Schema.String,
  port: Schema.Number,
  user: Schema.String,
  /** A SecureString parameter; read it with decryption. */
  passwordParameter: Schema.String
})
export type RestoredDatabase = typeof RestoredDatabase.Type

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
    /** Dump mode: the restored DB instance. */
    database: Schema.optional(RestoredDatabase),
    reason: Schema.optional(Schema.String)
  })
})
