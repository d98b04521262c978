import { DeleteSnapshotCommand, type EC2Client } from "@aws-sdk/client-ec2"
import { Clock, Duration, Effect } from "effect"
import { awsCall, sharerSnapshotReplicas } from "@backup-actions/aws"
import { CREATED_AT_TAG, SOURCE_RESOURCE_TAG, tagValue } from "./tags"

/** The sharer's replicas of one protected resource in the client's account and region, every page, pending copies too. */
export const replicasOf = (ec2: EC2Client, sourceResourceArn: string) => sharerSnapshotReplicas(ec2, { tag: SOURCE_RESOURCE_TAG, value: sourceResourceArn })

/**
 * Deletes the sharer's completed replicas of the resource whose tagged creation time is older
 * than the retention, except the one just made. A snapshot without the sharer's tags, or
 * without a readable creation time, is never deleted. Returns the ids it deleted.
 */
export const pruneReplicas = (
  ec2: EC2Client,
  options: { readonly sourceResourceArn: string; readonly keepSnapshotId: string; readonly retentionDays: number }
) =>
  Effect.gen(function* () {
    const now = yield* Clock.currentTimeMillis
    const limit = now - Duration.toMillis(Duration.days(options.retentionDays))
    const replicas = yield* replicasOf(ec2, options.sourceResourceArn)
    const expired = replicas.filter((snapshot) => {
      const createdAt = Date.parse(tagValue(snapshot.Tags, CREATED_AT_TAG) ?? "")
      return snapshot.SnapshotId !== options.keepSnapshotId && snapshot.State === "completed" && Number.isFinite(createdAt) && createdAt < limit
    })
    const deleted: Array<string> = []
    for (const snapshot of expired) {
      const snapshotId = snapshot.SnapshotId ?? ""
      const gone = yield* awsCall("ec2:DeleteSnapshot", (abortSignal) => ec2.send(new DeleteSnapshotCommand({ SnapshotId: snapshotId }), { abortSignal })).pipe(
        Effect.as(true),
        Effect.catchTag("AwsError", (error) =>
          error.kind === "not-found"
            ? Effect.succeed(true)
            : Effect.logWarning(`retention could not delete ${snapshotId}: ${error.code}: ${error.message}`).pipe(Effect.as(false))
        )
      )
      if (gone) deleted.push(snapshotId)
    }
    if (deleted.length > 0) yield* Effect.logInfo(`retention deleted ${deleted.length} replicas older than ${options.retentionDays} days: ${deleted.join(", ")}`)
    return deleted
  })
