import { CreateDBClusterCommand, CreateDBClusterSnapshotCommand, CreateDBInstanceCommand, CreateDBSnapshotCommand, type RDSClient, type Tag } from "@aws-sdk/client-rds"
import { Effect } from "effect"
import { Rds, awsCall } from "@backup-actions/aws"

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

/**
 * A PostgreSQL DB instance with the given tags and a snapshot of it, for tests of what a
 * service selects by the protected resource's tags: the instance's ARN (the event's
 * resourceArn) and the snapshot's (its recovery point).
 */
export const snapshotOfTaggedInstance = (name: string, snapshotId: string, tags: Readonly<Record<string, string>>) =>
  Effect.gen(function* () {
    const rds = yield* Rds
    const instance = yield* awsCall("rds:CreateDBInstance", (abortSignal) =>
      rds.send(
        new CreateDBInstanceCommand({
          DBInstanceIdentifier: name,
          DBInstanceClass: "db.t4g.micro",
          Engine: "postgres",
          AllocatedStorage: 20,
          MasterUsername: "owner",
          MasterUserPassword: "not-a-secret-0",
          Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value }))
        }),
        { abortSignal }
      )
    )
    const snapshot = yield* awsCall("rds:CreateDBSnapshot", (abortSignal) =>
      rds.send(new CreateDBSnapshotCommand({ DBInstanceIdentifier: name, DBSnapshotIdentifier: snapshotId }), { abortSignal })
    )
    return { resourceArn: instance.DBInstance?.DBInstanceArn ?? "", recoveryPointArn: snapshot.DBSnapshot?.DBSnapshotArn ?? "" }
  })
