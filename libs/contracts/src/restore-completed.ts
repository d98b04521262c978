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

/**
 * What the restorer did for a recovery point's archive plan: made a live copy (a volume, a DB
 * instance), failed to, or found that the plan needs none. The plan is the one the restorer
 * decided when the recovery point arrived, and the streamer archives by it without reading the
 * policy, so one recovery point's archive never rests on two decisions.
 */
export const RestoreCompleted = defineContract({
  source: OWNED_SOURCE,
  detailType: "Restore Completed",
  versioned: true,
  detail: Schema.Struct({
    ...OwnedDetailFields,
    /**
     * `not-needed`: the plan (direct mode) reads the recovery point itself, so nothing was
     * restored and the event only hands the plan to the streamer. A value added to the first
     * two rather than a new field: every event already archived on the bus still reads, and
     * routing and the reporter can tell a hand-off from a restore by the status alone.
     */
    status: Schema.Literal("restored", "failed", "not-needed"),
    resourceType: Schema.String,
    /** The protected resource the recovery point is a backup of, as AWS Backup named it; absent in events from earlier builds. */
    resourceArn: Schema.optional(Schema.String),
    backupVaultName: Schema.String,
    snapshotId: Schema.String,
    /** The archive plan, decided once, when the recovery point arrived. */
    plan: ArchivePlan,
    volumeId: Schema.optional(Schema.String),
    availabilityZone: Schema.optional(Schema.String),
    /** Dump mode: the restored DB instance. */
    database: Schema.optional(RestoredDatabase),
    reason: Schema.optional(Schema.String)
  })
})
