import { existsSync } from "node:fs"
import { AttachVolumeCommand, DescribeVolumesCommand, DetachVolumeCommand } from "@aws-sdk/client-ec2"
import { Context, Duration, Effect, Layer, Schedule, Schema, type Scope } from "effect"
import { awsCall } from "./call"
import { Ec2 } from "./clients/ec2"
import type { AwsError } from "./errors"

export class DeviceUnavailable extends Schema.TaggedError<DeviceUnavailable>()("DeviceUnavailable", {
  volumeId: Schema.String,
  reason: Schema.String
}) {}

export interface BlockDevicesShape {
  /**
   * The restored volume as a local block device, for as long as the scope lasts. It is
   * writable: it is a copy made for the archive and thrown away after it, and mounting a
   * filesystem whose journal must be replayed writes to it (the mounts themselves are read-only).
   */
  readonly attach: (volumeId: string) => Effect.Effect<string, DeviceUnavailable | AwsError, Scope.Scope>
}

/** The volume as EC2 describes it; a volume EC2 does not list is a DeviceUnavailable. */
export const describeVolume = (ec2: Context.Tag.Service<Ec2>, volumeId: string) =>
  awsCall("ec2:DescribeVolumes", (abortSignal) => ec2.send(new DescribeVolumesCommand({ VolumeIds: [volumeId] }), { abortSignal })).pipe(
    Effect.flatMap((result) => {
      const volume = result.Volumes?.[0]
      return volume === undefined ? Effect.fail(new DeviceUnavailable({ volumeId, reason: "no such volume" })) : Effect.succeed(volume)
    })
  )

/** The NVMe device that an attached EBS volume shows up as on Nitro instances. */
const nvmeDevicePath = (volumeId: string): string => `/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_${volumeId.replace("-", "")}`

const instanceId = Effect.tryPromise({
  try: async () => {
    const token = await fetch("http://169.254.169.254/latest/api/token", {
      method: "PUT",
      headers: { "X-aws-ec2-metadata-token-ttl-seconds": "300" },
      signal: AbortSignal.timeout(2_000)
    }).then((response) => response.text())
    return fetch("http://169.254.169.254/latest/meta-data/instance-id", {
      headers: { "X-aws-ec2-metadata-token": token },
      signal: AbortSignal.timeout(2_000)
    }).then((response) => response.text())
  },
  catch: (error) => new DeviceUnavailable({ volumeId: "", reason: `not on an EC2 instance (instance metadata: ${String(error)})` })
})

/** How a restored EBS volume becomes a block device of this machine. */
export class BlockDevices extends Context.Tag("backup-actions/BlockDevices")<BlockDevices, BlockDevicesShape>() {
  /** Attaches the volume to this EC2 instance, waits for its NVMe device, and detaches it when the scope closes. */
  static readonly Live: Layer.Layer<BlockDevices, never, Ec2> = Layer.effect(
    BlockDevices,
    Effect.gen(function* () {
      const ec2 = yield* Ec2
      const waitFor = (volumeId: string, state: string) =>
        describeVolume(ec2, volumeId).pipe(
          Effect.filterOrFail(
            (volume) => (state === "attached" ? volume.Attachments?.[0]?.State === "attached" : volume.State === state),
            () => new DeviceUnavailable({ volumeId, reason: `not ${state} yet` })
          ),
          Effect.retry({ schedule: Schedule.exponential(Duration.seconds(1), 1.5).pipe(Schedule.jittered, Schedule.upTo(Duration.minutes(10))) })
        )
      return {
        attach: (volumeId: string) =>
          Effect.gen(function* () {
            const self = yield* Effect.mapError(instanceId, (error) => new DeviceUnavailable({ volumeId, reason: error.reason }))
            yield* Effect.acquireRelease(
              awsCall("ec2:AttachVolume", (abortSignal) =>
                ec2.send(new AttachVolumeCommand({ VolumeId: volumeId, InstanceId: self, Device: "/dev/sdf" }), { abortSignal })
              ).pipe(Effect.zipRight(waitFor(volumeId, "attached"))),
              () =>
                awsCall("ec2:DetachVolume", (abortSignal) => ec2.send(new DetachVolumeCommand({ VolumeId: volumeId }), { abortSignal })).pipe(
                  Effect.zipRight(waitFor(volumeId, "available")),
                  Effect.ignoreLogged
                )
            )
            const device = nvmeDevicePath(volumeId)
            yield* Effect.filterOrFail(
              Effect.sync(() => existsSync(device)),
              (present) => present,
              () => new DeviceUnavailable({ volumeId, reason: `${device} did not appear` })
            ).pipe(Effect.retry({ schedule: Schedule.spaced(Duration.seconds(1)), times: 60 }))
            return device
          })
      }
    })
  )
}
