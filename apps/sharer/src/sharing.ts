import {
  CreateSnapshotCommand,
  CreateVolumeCommand,
  DeleteSnapshotCommand,
  DeleteVolumeCommand,
  DescribeAvailabilityZonesCommand,
  ModifySnapshotAttributeCommand
} from "@aws-sdk/client-ec2"
import { Context, Effect, Layer, type Scope } from "effect"
import { AwsConfig, type AwsError, awsCall, isEmulated } from "@backup-actions/aws"
import { AccountAccess, type AccountTarget, type RegionClients } from "./accounts"
import { STAND_IN_FOR_TAG } from "./tags"

/** A snapshot of the source account that another account is to copy. */
export interface ShareRequest {
  readonly snapshotId: string
  readonly sourceArn: string
  readonly volumeSizeGiB: number
  /** The source account's clients in the snapshot's region. */
  readonly source: RegionClients
  readonly destinationAccount: string
  /** The destination account in the snapshot's region, where a copy reads its source from. */
  readonly destinationAtSource: AccountTarget
}

export interface SourceSharingShape {
  /**
   * Lets the destination account read the snapshot while the scope is open and returns the
   * snapshot id that the destination's CopySnapshot names. Closing the scope takes the share back.
   */
  readonly share: (request: ShareRequest) => Effect.Effect<string, AwsError, Scope.Scope>
}

const modifyCreateVolumePermission = (request: ShareRequest, operation: "add" | "remove") =>
  awsCall("ec2:ModifySnapshotAttribute", (abortSignal) =>
    request.source.ec2.send(
      new ModifySnapshotAttributeCommand({
        SnapshotId: request.snapshotId,
        Attribute: "createVolumePermission",
        OperationType: operation,
        UserIds: [request.destinationAccount]
      }),
      { abortSignal }
    )
  )

/** createVolumePermission for the destination account, removed again when the copy is done. */
const grantCreateVolumePermission = (request: ShareRequest) =>
  Effect.acquireRelease(modifyCreateVolumePermission(request, "add"), () =>
    modifyCreateVolumePermission(request, "remove").pipe(
      Effect.catchTag("AwsError", (error) =>
        Effect.logWarning(`could not take back the share of ${request.snapshotId} with ${request.destinationAccount}: ${error.message}`)
      )
    )
  ).pipe(Effect.as(request.snapshotId))

/**
 * The emulator's CopySnapshot only finds a source snapshot in the caller's own account, so a
 * snapshot shared from another account is invisible to it. The destination account gets a
 * stand-in of the same size in the source region instead, made and deleted over the wire with
 * the destination's (assumed-role) credentials; the copy then runs as against AWS.
 */
const standInAtDestination = (access: typeof AccountAccess.Service, request: ShareRequest) =>
  Effect.gen(function* () {
    const destination = yield* access.clients(request.destinationAtSource)
    const zones = yield* awsCall("ec2:DescribeAvailabilityZones", (abortSignal) =>
      destination.ec2.send(new DescribeAvailabilityZonesCommand({}), { abortSignal })
    )
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

/** How the destination account gets to read the source snapshot. */
export class SourceSharing extends Context.Tag("backup-actions/sharer/SourceSharing")<SourceSharing, SourceSharingShape>() {
  /** AWS: EC2 ModifySnapshotAttribute adds the destination account to createVolumePermission. */
  static readonly viaCreateVolumePermission = Layer.succeed(SourceSharing, { share: grantCreateVolumePermission })

  /** The emulator: the same share (the emulator records it), then a stand-in the destination can copy. */
  static readonly withEmulatorStandIn = Layer.effect(
    SourceSharing,
    Effect.map(AccountAccess, (access) => ({
      share: (request: ShareRequest) => Effect.zipRight(grantCreateVolumePermission(request), standInAtDestination(access, request))
    }))
  )

  /** Picked from the settings, as RecoveryPoints is: the stand-in only where the emulator is the endpoint. */
  static readonly Live: Layer.Layer<SourceSharing, never, AwsConfig | AccountAccess> = Layer.unwrapEffect(
    Effect.map(AwsConfig, (settings): Layer.Layer<SourceSharing, never, AccountAccess> =>
      isEmulated(settings) ? SourceSharing.withEmulatorStandIn : SourceSharing.viaCreateVolumePermission
    )
  )
}
