import { Duration, Effect, Layer } from "effect"
import { AwsConfig, DynamoDb, Ec2, EventBridge, ProtectedResources, Rds, Sqs, Ssm, recoveryPointFacts, recoveryPointSubject } from "@backup-actions/aws"
import {
  ArchiveCompleted,
  RecoveryPointStateChange,
  RestoreCompleted,
  SweepDue,
  subscribe,
  snapshotIdFromArn,
  subscribeTo,
  subscriptionSet,
  type ArchivePlan,
  type DetailOf,
  type EventOf
} from "@backup-actions/contracts"
import { PolicySource, ROUTES, ServiceSettings, archivePlanFor, mayApply, needsTags } from "@backup-actions/config"
import { Publisher, UnprocessableEvent, requireRecoveryPoint, runStep } from "@backup-actions/consumer"
import { Ledger, failed, succeeded } from "@backup-actions/ledger"
import { deleteVolume, restoreVolume, restoreZone, sweepLeftovers } from "./volumes"
import { deleteRestoredInstance, sweepRestoredInstances } from "./db-instances"
import { restoreForDump } from "./dump-restore"

type RestoreDetail = DetailOf<typeof RestoreCompleted>

/** The ledger action of restoring a snapshot to a volume for a volume-mode archive. */
export const RESTORE_VOLUME_ACTION = "restore:volume"

/**
 * A completed recovery point whose policy asks for a volume-mode archive (restore it to a
 * volume) or a dump (restore it to a DB instance), by its type, vault, resource and, when a rule
 * asks, the protected resource's tags. An event that names no recovery point is rejected to the
 * DLQ when a rule may ask for either: there is nothing to restore and no ledger key to record a
 * failure under.
 */
export const onRecoveryPoint = (event: EventOf<typeof RecoveryPointStateChange>) =>
  Effect.gen(function* () {
    const policy = yield* PolicySource
    const facts = recoveryPointFacts(event)
    if (!mayApply(policy, "archive", facts, (rule) => rule.archive !== undefined && rule.archive.mode !== "direct")) return
    const recoveryPointArn = yield* requireRecoveryPoint(event)
    const point = yield* recoveryPointSubject(event, recoveryPointArn, { lookUpTags: needsTags(policy, "archive", facts) })
    const plan: ArchivePlan | undefined = archivePlanFor(policy, point)
    if (plan === undefined || plan.mode === "direct") return
    if (plan.mode === "dump") {
      return yield* restoreForDump({ recoveryPointArn, resourceType: point.resourceType, backupVaultName: point.vaultName, plan })
    }
    const snapshotId = snapshotIdFromArn(recoveryPointArn) ?? ""
    const base = {
      schemaVersion: 1 as const,
      correlationId: recoveryPointArn,
      idempotencyKey: `${recoveryPointArn}#${RESTORE_VOLUME_ACTION}`,
      resourceType: point.resourceType,
      backupVaultName: point.vaultName,
      snapshotId,
      plan
    }
    const spec = {
      step: { recoveryPointArn, action: RESTORE_VOLUME_ACTION },
      contract: RestoreCompleted,
      resources: [recoveryPointArn],
      gaveUp: (reason: string): RestoreDetail => ({ ...base, status: "failed", reason })
    }
    yield* runStep(spec, ({ claim }) =>
      Effect.gen(function* () {
        if (snapshotId === "") {
          const reason = `recovery point "${recoveryPointArn}" is not an EBS snapshot ARN`
          return failed<RestoreDetail>(reason, { ...base, status: "failed", reason })
        }
        const zone = yield* restoreZone
        const volume = yield* restoreVolume(snapshotId, recoveryPointArn, zone, claim.attempt)
        yield* Effect.logInfo(`restored ${snapshotId} to ${volume.volumeId} in ${zone}`)
        return succeeded<RestoreDetail>({ ...base, status: "restored", volumeId: volume.volumeId, availabilityZone: zone })
      }).pipe(
        Effect.catchTags({
          AwsError: (error) => {
            const reason = `${error.operation} failed: ${error.code}: ${error.message}`
            return Effect.succeed(failed<RestoreDetail>(reason, { ...base, status: "failed", reason }))
          },
          VolumeNotReady: (error) => {
            const reason = `volume ${error.volumeId} ended in state ${error.state}`
            return Effect.succeed(failed<RestoreDetail>(reason, { ...base, status: "failed", reason }))
          }
        })
      )
    )
  }).pipe(Effect.annotateLogs({ service: "restorer" }))

/**
 * An archive of a restored volume or DB instance ended, however it ended: delete what was
 * restored. The streamer always names it; an event that names neither is rejected to the DLQ
 * (whatever it left behind, the sweep removes by tag).
 */
export const onArchiveCompleted = (event: EventOf<typeof ArchiveCompleted>) =>
  Effect.gen(function* () {
    const { restoredInstanceId, restoredVolumeId, mode, correlationId } = event.detail
    if (restoredInstanceId === undefined && restoredVolumeId === undefined) {
      return yield* new UnprocessableEvent({
        reason: `"Archive Completed" event ${event.id} for ${correlationId} (mode ${mode}) names neither a restored volume nor a restored DB instance to delete`
      })
    }
    if (restoredInstanceId !== undefined) {
      yield* deleteRestoredInstance(restoredInstanceId)
      yield* Effect.logInfo(`deleted restored instance ${restoredInstanceId} and its password (dump ${event.detail.status})`)
    }
    if (restoredVolumeId === undefined) return
    yield* deleteVolume(restoredVolumeId)
    yield* Effect.logInfo(`deleted restored volume ${restoredVolumeId} (archive ${event.detail.status})`)
  })

/** The scheduled sweep: restored volumes and DB instances that a crash left behind. */
export const onSweepDue = (event: EventOf<typeof SweepDue>) =>
  Effect.gen(function* () {
    const deleted = yield* sweepLeftovers(Duration.hours(event.detail.olderThanHours))
    const instances = yield* sweepRestoredInstances(Duration.hours(event.detail.olderThanHours))
    yield* Effect.logInfo(`sweep deleted ${deleted.length} leftover volume(s) and ${instances.length} DB instance(s)`)
  })

export const subscriptions = subscriptionSet(
  subscribeTo(ROUTES.restorer.recoveryPoints, onRecoveryPoint),
  subscribeTo(ROUTES.restorer.volumeArchives, onArchiveCompleted),
  subscribe(SweepDue, onSweepDue)
)

/** The restorer's own services over clients and settings given from outside, so tests can point them at the emulator. */
export const RestorerServices = Layer.mergeAll(Ledger.Live, Publisher.Live, ProtectedResources.Live)

/** Everything the restorer's handlers need, from the environment. */
export const RestorerLive = RestorerServices.pipe(
  // The clients this service calls and no others: a smaller bundle, a faster cold start.
  Layer.provideMerge(Layer.mergeAll(Ec2.Live, Rds.Live, Ssm.Live, Sqs.Live, EventBridge.Live, DynamoDb.Live, ServiceSettings.fromEnv, PolicySource.fromEnv)),
  Layer.provideMerge(AwsConfig.fromEnv)
)
