import { Effect } from "effect"
import { RestoreCompleted, type ArchivePlan, type DetailOf } from "@backup-actions/contracts"
import { DEFAULT_DUMP_INSTANCE_CLASS } from "@backup-actions/config"
import { runStep } from "@backup-actions/consumer"
import { failed, succeeded } from "@backup-actions/ledger"
import {
  dbSnapshotIdFromArn,
  deleteRestoredInstance,
  dumpInstanceId,
  dumpableSnapshot,
  restoreInstance,
  setMasterPassword,
  waitUntilInstanceAvailable,
  type InstanceNotReady
} from "./db-instances"
import type { AwsError } from "@backup-actions/aws"

type RestoreDetail = DetailOf<typeof RestoreCompleted>

/** The ledger action of restoring a DB instance for a dump. */
export const RESTORE_DUMP_ACTION = "restore:dump"

/** A recovery point with the archive plan decided for it when it arrived (see the restorer's `onRecoveryPoint`). */
export interface PlannedRecoveryPoint {
  readonly recoveryPointArn: string
  readonly resourceType: string
  /** The protected resource, carried in every Restore Completed so that its archives can be found by it. */
  readonly resourceArn: string
  readonly backupVaultName: string
  readonly plan: ArchivePlan
}

const describeFailure = (error: AwsError | InstanceNotReady): string =>
  error._tag === "AwsError"
    ? `${error.operation} failed: ${error.code}: ${error.message}`
    : `restored instance ${error.instanceId} ended in state ${error.status}`

/**
 * A completed RDS recovery point whose policy asks for an engine-native dump: restore the
 * DB snapshot to a small private instance with a master password of our own (kept in SSM),
 * and announce where the streamer can reach it. Whatever fails after the instance was
 * asked for deletes it again; the snapshot itself is never touched.
 */
export const restoreForDump = (point: PlannedRecoveryPoint) =>
  Effect.gen(function* () {
    const { recoveryPointArn } = point
    const base = {
      schemaVersion: 1 as const,
      correlationId: recoveryPointArn,
      idempotencyKey: `${recoveryPointArn}#${RESTORE_DUMP_ACTION}`,
      resourceType: point.resourceType,
      resourceArn: point.resourceArn,
      backupVaultName: point.backupVaultName,
      plan: point.plan,
      snapshotId: dbSnapshotIdFromArn(recoveryPointArn) ?? ""
    }
    const failedWith = (reason: string) => failed<RestoreDetail>(reason, { ...base, status: "failed", reason })
    const spec = {
      step: { recoveryPointArn, action: RESTORE_DUMP_ACTION },
      contract: RestoreCompleted,
      resources: [recoveryPointArn],
      gaveUp: (reason: string): RestoreDetail => ({ ...base, status: "failed", reason })
    }
    yield* runStep(spec, () =>
      Effect.gen(function* () {
        if (point.resourceType !== "RDS") {
          return failedWith(`dump mode reads RDS DB snapshots; recovery point "${recoveryPointArn}" is of type ${point.resourceType}`)
        }
        const snapshot = yield* dumpableSnapshot(recoveryPointArn)
        const instanceId = dumpInstanceId(recoveryPointArn)
        const restored = Effect.gen(function* () {
          yield* restoreInstance({ recoveryPointArn, snapshotId: snapshot.snapshotId, instanceId, instanceClass: point.plan.instanceClass ?? DEFAULT_DUMP_INSTANCE_CLASS })
          yield* waitUntilInstanceAvailable(instanceId)
          const passwordParameter = yield* setMasterPassword(instanceId)
          const instance = yield* waitUntilInstanceAvailable(instanceId)
          return { instance, passwordParameter }
        })
        return yield* restored.pipe(
          Effect.map(({ instance, passwordParameter }) =>
            succeeded<RestoreDetail>({
              ...base,
              status: "restored",
              database: {
                instanceId,
                engine: instance.Engine ?? snapshot.engine,
                engineVersion: instance.EngineVersion ?? snapshot.engineVersion,
                address: instance.Endpoint?.Address ?? "",
                port: instance.Endpoint?.Port ?? 0,
                user: instance.MasterUsername ?? "",
                passwordParameter
              }
            })
          ),
          Effect.tap((done) => Effect.logInfo(`restored ${snapshot.snapshotId} to instance ${instanceId} (${done.outcome.database?.engine ?? ""})`)),
          Effect.catchTags({
            AwsError: (error) => Effect.as(deleteRestoredInstance(instanceId).pipe(Effect.ignore), failedWith(describeFailure(error))),
            InstanceNotReady: (error) => Effect.as(deleteRestoredInstance(instanceId).pipe(Effect.ignore), failedWith(describeFailure(error)))
          })
        )
      }).pipe(
        Effect.catchTags({
          NotDumpable: (error) => Effect.succeed(failedWith(error.reason)),
          AwsError: (error) => Effect.succeed(failedWith(describeFailure(error)))
        })
      )
    )
  }).pipe(Effect.annotateLogs({ service: "restorer", mode: "dump" }))
