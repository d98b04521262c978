import type { FailoverResult, RestoredResource } from "@backup-actions/contracts"
import type { FoundReplica } from "./replicas"

/** The result of restoring `replica` of `source`, with the recovery point objective it achieves at `nowMs`. */
export const failoverResult = (source: string, region: string, replica: FoundReplica, restored: RestoredResource, nowMs: number): FailoverResult => {
  const from = replica.sourceTakenAt ?? replica.createdAt ?? nowMs
  return {
    source,
    region,
    replica: {
      id: replica.id,
      arn: replica.arn,
      ...(replica.sourceTakenAt === undefined ? {} : { sourceTakenAt: new Date(replica.sourceTakenAt).toISOString() }),
      ...(replica.createdAt === undefined ? {} : { createdAt: new Date(replica.createdAt).toISOString() })
    },
    restored,
    rpoSeconds: Math.max(0, Math.round((nowMs - from) / 1000)),
    rpoFrom: replica.sourceTakenAt === undefined ? "replica creation" : "source snapshot"
  }
}
