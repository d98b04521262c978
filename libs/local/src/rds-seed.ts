import { CreateDBClusterCommand, CreateDBClusterSnapshotCommand, type RDSClient, type Tag } from "@aws-sdk/client-rds"
import { Effect } from "effect"
import { awsCall } from "@backup-actions/aws"

/**
 * An Aurora PostgreSQL DB cluster (made on first use, kept after) and a snapshot of it with the
 * given tags, in the client's account and region, for tests of what the sharer does with
 * cluster snapshots. Returns the snapshot's ARN.
 */
export const auroraClusterSnapshot = (rds: RDSClient, clusterId: string, snapshotId: string, tags: ReadonlyArray<Tag>) =>
  Effect.gen(function* () {
    yield* awsCall("rds:CreateDBCluster", (abortSignal) =>
      rds.send(
        new CreateDBClusterCommand({ DBClusterIdentifier: clusterId, Engine: "aurora-postgresql", MasterUsername: "owner", MasterUserPassword: "not-a-secret-0" }),
        { abortSignal }
      )
    ).pipe(Effect.catchIf((error) => error.kind === "conflict", () => Effect.void))
    const created = yield* awsCall("rds:CreateDBClusterSnapshot", (abortSignal) =>
      rds.send(new CreateDBClusterSnapshotCommand({ DBClusterIdentifier: clusterId, DBClusterSnapshotIdentifier: snapshotId, Tags: [...tags] }), { abortSignal })
    )
    return created.DBClusterSnapshot?.DBClusterSnapshotArn ?? ""
  })
