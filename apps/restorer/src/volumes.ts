import { createHash } from "node:crypto"
import {
  CreateVolumeCommand,
  DeleteVolumeCommand,
  DescribeAvailabilityZonesCommand,
  DescribeSnapshotsCommand,
  DescribeVolumesCommand
} from "@aws-sdk/client-ec2"
import { Clock, Config, Duration, Effect, Option, Schedule, Schema } from "effect"
import { AwsError, Ec2, awsCall } from "@backup-actions/aws"

/** Tags on everything the restorer makes; the sweeper only ever deletes what carries them. */
export const MANAGED_TAG = "backup-actions:managed"
export const RECOVERY_POINT_TAG = "backup-actions:recovery-point"
export const CREATED_AT_TAG = "backup-actions:created-at"

export class VolumeNotReady extends Schema.TaggedError<VolumeNotReady>()("VolumeNotReady", {
  volumeId: Schema.String,
  state: Schema.String
}) {}

/** The zone to restore into: BACKUP_ACTIONS_AVAILABILITY_ZONE (the streamer's), else the region's first. */
export const restoreZone = Effect.gen(function* () {
  const configured = yield* Config.option(Config.string("BACKUP_ACTIONS_AVAILABILITY_ZONE"))
  if (Option.isSome(configured)) return configured.value
  const ec2 = yield* Ec2
  const zones = yield* awsCall("ec2:DescribeAvailabilityZones", (abortSignal) =>
    ec2.send(new DescribeAvailabilityZonesCommand({ Filters: [{ Name: "state", Values: ["available"] }] }), { abortSignal })
  )
  const zone = zones.AvailabilityZones?.map((entry) => entry.ZoneName ?? "").sort()[0]
  return zone ?? ""
})

/**
 * CreateVolume's ClientToken for one restore attempt: the SHA-256 (64 hex characters, EC2's
 * limit) of the recovery point, its snapshot and the step's attempt. A request that awsCall
 * retries after a timeout or a lost reply carries the same token, so EC2 answers with the
 * volume the first one made instead of making another; the next attempt of the step gets a
 * new token, so it never adopts a volume that an earlier, failed attempt left to the sweeper.
 */
export const volumeClientToken = (recoveryPointArn: string, snapshotId: string, attempt: number): string =>
  createHash("sha256").update(`backup-actions:restore-volume\n${recoveryPointArn}\n${snapshotId}\n${attempt}`).digest("hex")

/**
 * Creates a gp3 volume from a snapshot, tagged as ours, and waits until it is available.
 * `attempt` is the ledger step's attempt (1 for the first), which makes the request idempotent
 * per attempt.
 */
export const restoreVolume = (snapshotId: string, recoveryPointArn: string, availabilityZone: string, attempt = 1) =>
  Effect.gen(function* () {
    const ec2 = yield* Ec2
    const snapshots = yield* awsCall("ec2:DescribeSnapshots", (abortSignal) =>
      ec2.send(new DescribeSnapshotsCommand({ Filters: [{ Name: "snapshot-id", Values: [snapshotId] }] }), { abortSignal })
    )
    const snapshot = snapshots.Snapshots?.[0]
    if (snapshot === undefined) {
      return yield* new AwsError({ operation: "ec2:DescribeSnapshots", code: "InvalidSnapshot.NotFound", message: `snapshot ${snapshotId} does not exist`, kind: "not-found" })
    }
    // Read once: every retry of the request below must carry the same parameters as the first.
    const now = yield* Clock.currentTimeMillis
    const clientToken = volumeClientToken(recoveryPointArn, snapshotId, attempt)
    const created = yield* awsCall("ec2:CreateVolume", (abortSignal) =>
      ec2.send(
        new CreateVolumeCommand({
          ClientToken: clientToken,
          SnapshotId: snapshotId,
          AvailabilityZone: availabilityZone,
          VolumeType: "gp3",
          Encrypted: snapshot.Encrypted,
          KmsKeyId: snapshot.KmsKeyId,
          TagSpecifications: [
            {
              ResourceType: "volume",
              Tags: [
                { Key: MANAGED_TAG, Value: "true" },
                { Key: RECOVERY_POINT_TAG, Value: recoveryPointArn.slice(0, 255) },
                { Key: CREATED_AT_TAG, Value: new Date(now).toISOString() },
                { Key: "Name", Value: `backup-actions restore of ${snapshotId}` }
              ]
            }
          ]
        }),
        { abortSignal }
      )
    )
    const volumeId = created.VolumeId ?? ""
    yield* waitUntilAvailable(volumeId)
    return { volumeId, availabilityZone, sizeGiB: created.Size ?? snapshot.VolumeSize ?? 0 }
  })

/** Polls with a growing, jittered interval: seconds for a small volume, minutes for a large one. */
export const waitUntilAvailable = (volumeId: string) =>
  Effect.gen(function* () {
    const ec2 = yield* Ec2
    const result = yield* awsCall("ec2:DescribeVolumes", (abortSignal) => ec2.send(new DescribeVolumesCommand({ VolumeIds: [volumeId] }), { abortSignal }))
    const state = result.Volumes?.[0]?.State ?? "unknown"
    if (state !== "available") return yield* new VolumeNotReady({ volumeId, state })
  }).pipe(
    Effect.retry({
      schedule: Schedule.exponential(Duration.seconds(1), 1.5).pipe(Schedule.jittered, Schedule.upTo(Duration.minutes(30))),
      while: (error) => error._tag === "VolumeNotReady" && error.state === "creating"
    })
  )

/** Deletes a volume we made; one already gone is fine. */
export const deleteVolume = (volumeId: string) =>
  Effect.flatMap(Ec2, (ec2) =>
    awsCall("ec2:DeleteVolume", (abortSignal) => ec2.send(new DeleteVolumeCommand({ VolumeId: volumeId }), { abortSignal }))
  ).pipe(
    Effect.asVoid,
    Effect.catchIf(
      (error) => error.kind === "not-found",
      () => Effect.logInfo(`volume ${volumeId} was already deleted`)
    )
  )

/**
 * Deletes the volumes that a crash left behind: tagged as ours, not attached, and older
 * than the limit. Never touches an untagged volume.
 */
export const sweepLeftovers = (olderThan: Duration.DurationInput) =>
  Effect.gen(function* () {
    const ec2 = yield* Ec2
    const now = yield* Clock.currentTimeMillis
    const limit = now - Duration.toMillis(Duration.decode(olderThan))
    const deleted: Array<string> = []
    let nextToken: string | undefined
    do {
      const page = yield* awsCall("ec2:DescribeVolumes", (abortSignal) =>
        ec2.send(
          new DescribeVolumesCommand({
            Filters: [
              { Name: `tag:${MANAGED_TAG}`, Values: ["true"] },
              { Name: "status", Values: ["available"] }
            ],
            NextToken: nextToken
          }),
          { abortSignal }
        )
      )
      for (const volume of page.Volumes ?? []) {
        const createdAt = Date.parse(volume.Tags?.find((tag) => tag.Key === CREATED_AT_TAG)?.Value ?? "")
        if (Number.isFinite(createdAt) && createdAt < limit && volume.VolumeId !== undefined) {
          yield* deleteVolume(volume.VolumeId)
          deleted.push(volume.VolumeId)
        }
      }
      nextToken = page.NextToken
    } while (nextToken !== undefined)
    if (deleted.length > 0) yield* Effect.logInfo(`swept ${deleted.length} leftover volumes: ${deleted.join(", ")}`)
    return deleted
  })
