import { Effect, Layer } from "effect"
import { AwsConfig, Backup, BlockDevices, DatabaseEndpoints, DynamoDb, Ebs, Ec2, EventBridge, Rds, RecoveryPoints, S3, Sqs, Ssm } from "@backup-actions/aws"
import { ExportCompleted, RestoreCompleted, subscribeTo, subscriptionSet, type EventOf } from "@backup-actions/contracts"
import { PolicySource, ROUTES, ServiceSettings } from "@backup-actions/config"
import { Publisher, UnprocessableEvent } from "@backup-actions/consumer"
import { Ledger } from "@backup-actions/ledger"
import { archiveDirect } from "./direct"
import { archiveVolume } from "./volume"
import { archiveDump } from "./dump"

/**
 * The archive plan that the restorer decided when the recovery point arrived, with what it
 * restored for it: a volume for volume mode, a DB instance for a dump, nothing for direct mode
 * (status not-needed). The streamer archives by this plan and never reads the policy's archive
 * rules, so a policy changed since, or deployed here before the restorer, cannot change it. An
 * event that cannot be archived as it says (a restore for direct mode, no restore for another
 * mode, a restore that does not say what was restored) is rejected to the DLQ with the reason.
 */
export const onRestoreCompleted = (event: EventOf<typeof RestoreCompleted>) =>
  Effect.gen(function* () {
    const { detail } = event
    if (detail.status === "failed") return
    const rejected = (problem: string) =>
      new UnprocessableEvent({ reason: `"Restore Completed" event ${event.id} for ${detail.correlationId} (mode ${detail.plan.mode}) ${problem}` })
    if (detail.status === "not-needed") {
      if (detail.plan.mode !== "direct") return yield* rejected("says nothing was restored, but this mode archives a restored copy")
      // A recovery point that is not an EBS snapshot fails its step with the reason, in the ledger and the event.
      return yield* archiveDirect({
        recoveryPointArn: detail.correlationId,
        resourceArn: detail.resourceArn,
        backupVaultName: detail.backupVaultName,
        snapshotId: detail.snapshotId,
        plan: detail.plan,
        mode: "direct"
      })
    }
    if (detail.plan.mode === "direct") return yield* rejected("is for direct mode, which archives from the snapshot and never restores")
    if (detail.plan.mode === "dump") {
      if (detail.database === undefined) return yield* rejected("names no restored DB instance to dump")
      return yield* archiveDump({
        recoveryPointArn: detail.correlationId,
        resourceArn: detail.resourceArn,
        backupVaultName: detail.backupVaultName,
        snapshotId: detail.snapshotId,
        plan: detail.plan,
        database: detail.database
      })
    }
    if (detail.volumeId === undefined) return yield* rejected("names no restored volume to archive")
    yield* archiveVolume({
      recoveryPointArn: detail.correlationId,
      resourceArn: detail.resourceArn,
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
          // The AMI's instance: each snapshot's archive is an artifact of the instance the image is of.
          resourceArn: event.detail.resourceArn,
          backupVaultName: "",
          snapshotId: snapshot.snapshotId,
          plan: { rule: `ami:${event.detail.imageId ?? event.detail.correlationId}`, mode: "direct", compression: "zstd", deleteSourceAfterVerify: false },
          mode: "direct"
        }),
      { discard: true }
    )
  })

export const subscriptions = subscriptionSet(
  subscribeTo(ROUTES.streamer.archivePlans, onRestoreCompleted),
  subscribeTo(ROUTES.streamer.amiExports, onAmiExported)
)

/**
 * The streamer's own services. What differs off AWS (RecoveryPoints, BlockDevices,
 * DatabaseEndpoints) is left to the assembly: StreamerLive gives AWS's, another assembly its own.
 */
export const StreamerServices = Layer.mergeAll(Ledger.Live, Publisher.Live)

/** The clients this service calls and no others (a smaller bundle, a faster cold start), and its settings and policy, from the environment. */
export const StreamerClients = Layer.mergeAll(Backup.Live, Rds.Live, S3.Live, Ebs.Live, Ec2.Live, Sqs.Live, EventBridge.Live, DynamoDb.Live, Ssm.Live, ServiceSettings.fromEnv, PolicySource.fromEnv).pipe(
  Layer.provideMerge(AwsConfig.fromEnv)
)

/** Everything the streamer's handlers need on AWS, from the environment. */
export const StreamerLive = StreamerServices.pipe(
  Layer.provideMerge(Layer.mergeAll(RecoveryPoints.Live, BlockDevices.Live, DatabaseEndpoints.Live)),
  Layer.provideMerge(StreamerClients)
)
