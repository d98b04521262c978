import { CreateVolumeCommand, DescribeVolumesCommand, type EC2Client } from "@aws-sdk/client-ec2"
import { Effect } from "effect"
import { awsCall } from "@backup-actions/aws"
import type { RestoredResource } from "@backup-actions/contracts"
import { OperationFailed } from "../errors"
import type { FoundReplica } from "./replicas"
import type { FailoverRequest } from "./request"
import { failoverTags } from "./restore"
import { NotReadyYet, waitUntilReady } from "./wait"

/** EBS: a new gp3 volume from the snapshot replica in the zone asked for, waited for until available. */
export const createVolume = (ec2: EC2Client, request: FailoverRequest, replica: FoundReplica, zone: string, nowMs: number) =>
  Effect.gen(function* () {
    const created = yield* awsCall("ec2:CreateVolume", (abortSignal) =>
      ec2.send(
        new CreateVolumeCommand({
          SnapshotId: replica.id,
          AvailabilityZone: zone,
          VolumeType: "gp3",
          TagSpecifications: [{ ResourceType: "volume", Tags: failoverTags(request.source, replica, nowMs) }]
        }),
        { abortSignal }
      )
    )
    const volumeId = created.VolumeId ?? ""
    const state = yield* waitUntilReady(
      `volume ${volumeId}`,
      Effect.gen(function* () {
        const answer = yield* awsCall("ec2:DescribeVolumes", (abortSignal) => ec2.send(new DescribeVolumesCommand({ VolumeIds: [volumeId] }), { abortSignal }))
        const current = answer.Volumes?.[0]?.State ?? "unknown"
        if (current === "available") return current
        if (current === "error") return yield* new OperationFailed({ message: `volume ${volumeId} ended in the error state while it was being created from ${replica.arn}` })
        return yield* new NotReadyYet({ status: current })
      })
    )
    const restored: RestoredResource = { kind: "volume", id: volumeId, status: state, availabilityZone: zone }
    return restored
  })
