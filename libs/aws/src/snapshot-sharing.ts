import { ModifySnapshotAttributeCommand } from "@aws-sdk/client-ec2"
import { Context, Effect, Layer, type Scope } from "effect"
import type { AccountTarget, RegionClients } from "./account-access"
import { awsCall } from "./call"
import type { AwsError } from "./errors"

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

/** How the destination account gets to read a source snapshot. */
export class SourceSharing extends Context.Tag("backup-actions/SourceSharing")<SourceSharing, SourceSharingShape>() {
  /** EC2 ModifySnapshotAttribute adds the destination account to the snapshot's createVolumePermission. */
  static readonly Live: Layer.Layer<SourceSharing> = Layer.succeed(SourceSharing, { share: grantCreateVolumePermission })
}
