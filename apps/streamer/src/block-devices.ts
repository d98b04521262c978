import { existsSync } from "node:fs"
import { mkdir, open, rm } from "node:fs/promises"
import { join } from "node:path"
import { AttachVolumeCommand, DescribeVolumesCommand, DetachVolumeCommand } from "@aws-sdk/client-ec2"
import { Context, Duration, Effect, Layer, Option, Schedule, Schema, type Scope } from "effect"
import { AwsConfig, AwsError, Ebs, Ec2, awsCall, isEmulated } from "@backup-actions/aws"
import { ServiceSettings } from "@backup-actions/config"
import { openEbsDirectSource, type EbsSourceError } from "./ebs-direct-source"
import { CommandFailed, run } from "./exec"

export class DeviceUnavailable extends Schema.TaggedError<DeviceUnavailable>()("DeviceUnavailable", {
  volumeId: Schema.String,
  reason: Schema.String
}) {}

export type DeviceError = DeviceUnavailable | AwsError | CommandFailed | EbsSourceError

export interface BlockDevicesShape {
  /**
   * The restored volume as a local block device, for as long as the scope lasts. It is
   * writable: it is a copy made for the archive and thrown away after it, and mounting a
   * filesystem whose journal must be replayed writes to it (the mounts themselves are read-only).
   */
  readonly attach: (volumeId: string) => Effect.Effect<string, DeviceError, Scope.Scope>
}

export class BlockDevices extends Context.Tag("backup-actions/BlockDevices")<BlockDevices, BlockDevicesShape>() {}

const describeVolume = (ec2: Context.Tag.Service<Ec2>, volumeId: string) =>
  awsCall("ec2:DescribeVolumes", (abortSignal) => ec2.send(new DescribeVolumesCommand({ VolumeIds: [volumeId] }), { abortSignal })).pipe(
    Effect.flatMap((result) => {
      const volume = result.Volumes?.[0]
      return volume === undefined ? Effect.fail(new DeviceUnavailable({ volumeId, reason: "no such volume" })) : Effect.succeed(volume)
    })
  )

const tryPromise = <A>(volumeId: string, what: string, run: () => Promise<A>) =>
  Effect.tryPromise({ try: run, catch: (error) => new DeviceUnavailable({ volumeId, reason: `${what}: ${String(error)}` }) })

/**
 * Against the emulator a volume has no device behind it: its snapshot's blocks are written
 * into a sparse image file (through the EBS direct APIs) and a loop device with partition
 * scanning is put over it, which is what an attached EBS volume looks like. The loop device
 * is writable, as an attached volume is: the image is this archive's own copy of the
 * snapshot, removed with the scope, and a journal replayed on mounting writes to it.
 */
export const loopBlockDevices = Layer.effect(
  BlockDevices,
  Effect.gen(function* () {
    const ec2 = yield* Ec2
    const ebs = yield* Ebs
    const settings = yield* ServiceSettings
    return {
      attach: (volumeId: string) =>
        Effect.gen(function* () {
          const volume = yield* describeVolume(ec2, volumeId)
          const snapshotId = volume.SnapshotId
          if (snapshotId === undefined || snapshotId === "") {
            return yield* new DeviceUnavailable({ volumeId, reason: "the volume was not created from a snapshot" })
          }
          const dir = join(settings.workDir, "devices")
          const image = join(dir, `${volumeId}.img`)
          const materialize = Effect.gen(function* () {
            yield* tryPromise(volumeId, "create work directory", () => mkdir(dir, { recursive: true }))
            const { layout, open: openSource } = yield* openEbsDirectSource(snapshotId)
            const file = yield* tryPromise(volumeId, "create image", () => open(image, "w"))
            yield* Effect.ensuring(
              Effect.gen(function* () {
                yield* tryPromise(volumeId, "size image", () => file.truncate(layout.volumeBytes))
                const source = yield* openSource(0)
                let offset = 0
                while (true) {
                  const job = yield* source.pull
                  if (Option.isNone(job)) break
                  const at = offset
                  offset += job.value.inputBytes
                  const { bytes } = yield* job.value.produce
                  if (Option.isSome(bytes)) yield* tryPromise(volumeId, "write image", () => file.write(bytes.value, 0, bytes.value.length, at))
                }
              }),
              Effect.promise(() => file.close())
            )
          }).pipe(Effect.provideService(Ebs, ebs), Effect.provideService(Ec2, ec2))
          yield* Effect.acquireRelease(materialize, () => Effect.promise(() => rm(image, { force: true })))
          const device = yield* Effect.acquireRelease(
            run("losetup", ["--find", "--show", "--partscan", image]).pipe(
              Effect.map((output) => output.trim()),
              Effect.catchTag("ToolTimedOut", (timedOut) => new DeviceUnavailable({ volumeId, reason: timedOut.message }))
            ),
            (loop) => run("losetup", ["--detach", loop]).pipe(Effect.ignoreLogged)
          )
          yield* Effect.logInfo(`volume ${volumeId} (snapshot ${snapshotId}) is ${device}`)
          return device
        })
    }
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

/** On EC2: attach the volume to this instance, wait for its NVMe device, detach when done. */
export const attachedBlockDevices = Layer.effect(
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

/** Loop devices against the emulator, attached EBS volumes against AWS. */
export const BlockDevicesLive = Layer.unwrapEffect(
  Effect.map(AwsConfig, (settings): Layer.Layer<BlockDevices, never, Ec2 | Ebs | ServiceSettings> =>
    isEmulated(settings) ? loopBlockDevices : attachedBlockDevices
  )
)
