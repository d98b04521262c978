import { CreateSnapshotCommand, CreateVolumeCommand, DeleteSnapshotCommand, DeleteVolumeCommand, DescribeAvailabilityZonesCommand } from "@aws-sdk/client-ec2"
import { Effect, Layer } from "effect"
import { AccountAccess, SourceSharing, awsCall, type AwsConfig, type ShareRequest, type Sts } from "@backup-actions/aws"

/** The tag on a stand-in snapshot: the source snapshot's ARN that it plays in the destination account. */
export const STAND_IN_FOR_TAG = "backup-actions:stand-in-for"

/** How the stand-in's calls in the destination account name their caller. */
const STAND_IN_SESSION = "backup-actions-local-stand-in"

/**
 * The emulator's CopySnapshot only finds a source snapshot in the caller's own account, so a
 * snapshot shared from another account is invisible to it. The destination account gets a
 * stand-in of the same size in the source region instead, made and deleted over the wire with
 * the destination's (assumed-role) credentials; the copy then runs as against AWS.
 */
const standInAtDestination = (access: typeof AccountAccess.Service, request: ShareRequest) =>
  Effect.gen(function* () {
    const destination = yield* access.clients(request.destinationAtSource)
    const zones = yield* awsCall("ec2:DescribeAvailabilityZones", (abortSignal) => destination.ec2.send(new DescribeAvailabilityZonesCommand({}), { abortSignal }))
    const zone = zones.AvailabilityZones?.map((entry) => entry.ZoneName ?? "").sort()[0] ?? `${destination.region}a`
    const tags = [{ Key: STAND_IN_FOR_TAG, Value: request.sourceArn }]
    const volume = yield* awsCall("ec2:CreateVolume", (abortSignal) =>
      destination.ec2.send(
        new CreateVolumeCommand({
          AvailabilityZone: zone,
          Size: request.volumeSizeGiB,
          TagSpecifications: [{ ResourceType: "volume", Tags: tags }]
        }),
        { abortSignal }
      )
    )
    const volumeId = volume.VolumeId ?? ""
    const snapshot = yield* Effect.acquireRelease(
      awsCall("ec2:CreateSnapshot", (abortSignal) =>
        destination.ec2.send(
          new CreateSnapshotCommand({ VolumeId: volumeId, Description: `stand-in for ${request.sourceArn}`, TagSpecifications: [{ ResourceType: "snapshot", Tags: tags }] }),
          { abortSignal }
        )
      ).pipe(Effect.ensuring(awsCall("ec2:DeleteVolume", (abortSignal) => destination.ec2.send(new DeleteVolumeCommand({ VolumeId: volumeId }), { abortSignal })).pipe(Effect.ignoreLogged))),
      (created) =>
        awsCall("ec2:DeleteSnapshot", (abortSignal) => destination.ec2.send(new DeleteSnapshotCommand({ SnapshotId: created.SnapshotId }), { abortSignal })).pipe(
          Effect.ignoreLogged
        )
    )
    yield* Effect.logInfo(`emulator: ${snapshot.SnapshotId ?? "?"} in ${request.destinationAccount} stands in for the shared ${request.snapshotId}`)
    return snapshot.SnapshotId ?? ""
  })

/**
 * SourceSharing on the emulator: the same share as on AWS (the emulator records it), then a
 * stand-in that the destination account can copy, whose id the copy names.
 */
export const LocalSourceSharing: Layer.Layer<SourceSharing, never, AwsConfig | Sts> = Layer.effect(
  SourceSharing,
  Effect.gen(function* () {
    const live = yield* SourceSharing
    const access = yield* AccountAccess
    return { share: (request: ShareRequest) => Effect.zipRight(live.share(request), standInAtDestination(access, request)) }
  })
).pipe(Layer.provide(Layer.merge(SourceSharing.Live, AccountAccess.layer(STAND_IN_SESSION))))
