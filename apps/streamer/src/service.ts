import { Effect, Layer } from "effect"
import { AwsConfig, Backup, DynamoDb, Ebs, Ec2, EventBridge, ProtectedResources, Rds, RecoveryPoints, S3, Sqs, Ssm, recoveryPointFacts, recoveryPointSubject } from "@backup-actions/aws"
import {
  ExportCompleted,
  RecoveryPointStateChange,
  RestoreCompleted,
  snapshotIdFromArn,
  subscribeTo,
  subscriptionSet,
  type EventOf
} from "@backup-actions/contracts"
import { PolicySource, ROUTES, ServiceSettings, archivePlanFor, mayApply, needsTags } from "@backup-actions/config"
import { Publisher, UnprocessableEvent, requireRecoveryPoint } from "@backup-actions/consumer"
import { Ledger } from "@backup-actions/ledger"
import { BlockDevicesLive } from "./block-devices"
import { archiveDirect } from "./direct"
import { archiveVolume } from "./volume"
import { archiveDump } from "./dump"

/**
 * A completed EBS recovery point whose policy asks for a direct-mode archive (by its type, vault,
 * resource and, when a rule asks, the protected resource's tags). An event that names no
 * recovery point is rejected to the DLQ when a rule may ask for one: there is no snapshot to read.
 */
export const onRecoveryPoint = (event: EventOf<typeof RecoveryPointStateChange>) =>
  Effect.gen(function* () {
    const policy = yield* PolicySource
    const facts = recoveryPointFacts(event)
    if (!mayApply(policy, "archive", facts, (rule) => rule.archive?.mode === "direct")) return
    const recoveryPointArn = yield* requireRecoveryPoint(event)
    const point = yield* recoveryPointSubject(event, recoveryPointArn, { lookUpTags: needsTags(policy, "archive", facts) })
    const plan = archivePlanFor(policy, point)
    if (plan === undefined || plan.mode !== "direct") return
    const snapshotId = snapshotIdFromArn(recoveryPointArn)
    const subject = {
      recoveryPointArn,
      backupVaultName: point.vaultName,
      snapshotId: snapshotId ?? "",
      plan,
      mode: "direct" as const
    }
    // A recovery point that is not an EBS snapshot fails its step with the reason, in the ledger and the event.
    yield* archiveDirect(subject)
  })

/**
 * The restorer made a volume for a volume-mode archive, or a DB instance for a dump. A
 * "restored" event that does not say what was restored (or is for direct mode, which never
 * restores) can never be archived: it is rejected to the DLQ with the reason.
 */
export const onRestoreCompleted = (event: EventOf<typeof RestoreCompleted>) =>
  Effect.gen(function* () {
    const { detail } = event
    if (detail.status !== "restored") return
    const rejected = (problem: string) =>
      new UnprocessableEvent({ reason: `"Restore Completed" event ${event.id} for ${detail.correlationId} (mode ${detail.plan.mode}) ${problem}` })
    if (detail.plan.mode === "direct") return yield* rejected("is for direct mode, which archives from the snapshot and never restores")
    if (detail.plan.mode === "dump") {
      if (detail.database === undefined) return yield* rejected("names no restored DB instance to dump")
      return yield* archiveDump({
        recoveryPointArn: detail.correlationId,
        backupVaultName: detail.backupVaultName,
        snapshotId: detail.snapshotId,
        plan: detail.plan,
        database: detail.database
      })
    }
    if (detail.volumeId === undefined) return yield* rejected("names no restored volume to archive")
    yield* archiveVolume({
      recoveryPointArn: detail.correlationId,
      backupVaultName: detail.backupVaultName,
      snapshotId: detail.snapshotId,
      plan: detail.plan,
      mode: "volume",
      restoredVolumeId: detail.volumeId
    })
  })

/**
 * The exporter wrote an AMI's metadata in direct mode: archive each of its snapshots through the
 * EBS direct APIs where the export says, one ledger step per snapshot. The snapshots back a
 * registered image, so they are never deleted here. The exporter refuses an image without
 * snapshots, so an export that lists none is rejected to the DLQ rather than ignored.
 */
export const onAmiExported = (event: EventOf<typeof ExportCompleted>) =>
  Effect.gen(function* () {
    const snapshots = event.detail.snapshots ?? []
    if (snapshots.length === 0) {
      return yield* new UnprocessableEvent({
        reason: `"Export Completed" event ${event.id} for ${event.detail.correlationId} (AMI, direct mode) lists no snapshots to archive`
      })
    }
    yield* Effect.forEach(
      snapshots,
      (snapshot) =>
        archiveDirect({
          recoveryPointArn: `arn:aws:ec2:${event.region}::snapshot/${snapshot.snapshotId}`,
          backupVaultName: "",
          snapshotId: snapshot.snapshotId,
          plan: { rule: `ami:${event.detail.imageId ?? event.detail.correlationId}`, mode: "direct", compression: "zstd", deleteSourceAfterVerify: false },
          mode: "direct"
        }),
      { discard: true }
    )
  })

export const subscriptions = subscriptionSet(
  subscribeTo(ROUTES.streamer.recoveryPoints, onRecoveryPoint),
  subscribeTo(ROUTES.streamer.restoredVolumes, onRestoreCompleted),
  subscribeTo(ROUTES.streamer.amiExports, onAmiExported)
)

/** The streamer's own services over clients and settings given from outside, so tests can point them at the emulator. */
export const StreamerServices = Layer.mergeAll(Ledger.Live, Publisher.Live, RecoveryPoints.Live, ProtectedResources.Live, BlockDevicesLive)

/** Everything the streamer's handlers need, from the environment. */
export const StreamerLive = StreamerServices.pipe(
  // The clients this service calls and no others: a smaller bundle, a faster cold start.
  Layer.provideMerge(Layer.mergeAll(Backup.Live, Rds.Live, S3.Live, Ebs.Live, Ec2.Live, Sqs.Live, EventBridge.Live, DynamoDb.Live, Ssm.Live, ServiceSettings.fromEnv, PolicySource.fromEnv)),
  Layer.provideMerge(AwsConfig.fromEnv)
)
