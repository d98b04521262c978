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
import { ARCHIVE_MODE_RESOURCE_TYPES, PolicySource, ROUTES, ServiceSettings, archivePlanFor, mayApply, needsTags } from "@backup-actions/config"
import { Publisher, UnprocessableEvent, requireRecoveryPoint, runStep } from "@backup-actions/consumer"
import { Ledger, failed, succeeded } from "@backup-actions/ledger"
import { deleteVolume, restoreVolume, restoreZone, sweepLeftovers } from "./volumes"
import { deleteRestoredInstance, sweepRestoredInstances } from "./db-instances"
import { restoreForDump, type PlannedRecoveryPoint } from "./dump-restore"

type RestoreDetail = DetailOf<typeof RestoreCompleted>

/** The ledger action of restoring a snapshot to a volume for a volume-mode archive. */
export const RESTORE_VOLUME_ACTION = "restore:volume"

/** The action named in the idempotency key of a direct-mode plan handed to the streamer, for which nothing is restored. */
export const DIRECT_HAND_OFF_ACTION = "restore:direct"

/**
 * Direct mode reads the snapshot itself, so nothing is restored: the plan goes to the streamer
 * at once, as a Restore Completed whose status says no restore was needed. Only for the
 * resource types direct mode reads (a rule that lists no types archives directly where it
 * can). Not a ledger step, since nothing is done here: a redelivered hand-off finds the
 * streamer's archive step finished.
 */
const handOffDirect = (point: PlannedRecoveryPoint) =>
  Effect.gen(function* () {
    if (!ARCHIVE_MODE_RESOURCE_TYPES.direct.includes(point.resourceType)) return
    const publisher = yield* Publisher
    const { recoveryPointArn } = point
    const detail: RestoreDetail = {
      schemaVersion: 1,
      correlationId: recoveryPointArn,
      idempotencyKey: `${recoveryPointArn}#${DIRECT_HAND_OFF_ACTION}`,
      status: "not-needed",
      resourceType: point.resourceType,
      resourceArn: point.resourceArn,
      backupVaultName: point.backupVaultName,
      snapshotId: snapshotIdFromArn(recoveryPointArn) ?? "",
      plan: point.plan
    }
    yield* publisher.publish(RestoreCompleted, detail, [recoveryPointArn])
    yield* Effect.logInfo(`handed the direct-mode plan of rule ${point.plan.rule} for ${recoveryPointArn} to the streamer`)
  })

/**
 * The one place where a recovery point's archive plan is decided: by its type, vault, resource
 * and, when a rule asks, the protected resource's tags, as the policy stands when the point
 * arrives. The plan then travels in Restore Completed, and the streamer archives by it without
 * reading the archive rules: were both services to decide, two of them deployed with different
 * policies (each stack is deployed on its own) could archive a point twice, or not at all.
 * Volume mode restores the snapshot to a volume, dump mode the DB snapshot to an instance,
 * direct mode restores nothing and hands the plan on. An event that names no recovery point is
 * rejected to the DLQ when a rule may ask for an archive: there is nothing to archive and no
 * ledger key to record a failure under.
 */
export const onRecoveryPoint = (event: EventOf<typeof RecoveryPointStateChange>) =>
  Effect.gen(function* () {
    const policy = yield* PolicySource
    const facts = recoveryPointFacts(event)
    if (!mayApply(policy, "archive", facts)) return
    const recoveryPointArn = yield* requireRecoveryPoint(event)
    const point = yield* recoveryPointSubject(event, recoveryPointArn, { lookUpTags: needsTags(policy, "archive", facts) })
    const plan: ArchivePlan | undefined = archivePlanFor(policy, point)
    if (plan === undefined) return
    const planned: PlannedRecoveryPoint = {
      recoveryPointArn,
      resourceType: point.resourceType,
      resourceArn: point.resourceArn,
      backupVaultName: point.vaultName,
      plan
    }
    if (plan.mode === "direct") return yield* handOffDirect(planned)
    if (plan.mode === "dump") return yield* restoreForDump(planned)
    const snapshotId = snapshotIdFromArn(recoveryPointArn) ?? ""
    const base = {
      schemaVersion: 1 as const,
      correlationId: recoveryPointArn,
      idempotencyKey: `${recoveryPointArn}#${RESTORE_VOLUME_ACTION}`,
      resourceType: point.resourceType,
      resourceArn: point.resourceArn,
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

/** The restorer's own services, over whichever clients, settings and policy the caller provides (a process's environment, or a test's). */
export const RestorerServices = Layer.mergeAll(Ledger.Live, Publisher.Live, ProtectedResources.Live)

/** Everything the restorer's handlers need, from the environment. */
export const RestorerLive = RestorerServices.pipe(
  // The clients this service calls and no others: a smaller bundle, a faster cold start.
  Layer.provideMerge(Layer.mergeAll(Ec2.Live, Rds.Live, Ssm.Live, Sqs.Live, EventBridge.Live, DynamoDb.Live, ServiceSettings.fromEnv, PolicySource.fromEnv)),
  Layer.provideMerge(AwsConfig.fromEnv)
)
