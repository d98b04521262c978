import { DescribeSnapshotsCommand, type EC2Client } from "@aws-sdk/client-ec2"
import { DescribeDBClusterSnapshotsCommand, DescribeDBSnapshotsCommand, type RDSClient } from "@aws-sdk/client-rds"
import { Effect } from "effect"
import { MANAGED_BY_TAG, SHARER } from "@backup-actions/contracts"
import { awsCall } from "./call"
import type { AwsError } from "./errors"

/** An EC2 or RDS tag list, as either SDK types it. */
export type TagList = ReadonlyArray<{ readonly Key?: string | undefined; readonly Value?: string | undefined }> | undefined

/** The value of a tag in an EC2 or RDS tag list. */
export const tagValueIn = (tags: TagList, key: string): string | undefined => tags?.find((tag) => tag.Key === key)?.Value

/**
 * Which of the sharer's replicas to find: those whose `tag` holds `value`. SOURCE_RESOURCE_TAG
 * selects every replica of a protected resource (retention, failover of a resource),
 * SOURCE_ARN_TAG those of one recovery point.
 */
export interface ReplicaSelector {
  readonly tag: string
  readonly value: string
}

/**
 * Replicas are found by the sharer's tags, never by name. The filters already ask for them;
 * checking again means a snapshot without them is never taken for a replica (and so never
 * pruned or failed over to).
 */
const isSharerReplica = (tags: TagList, selector: ReplicaSelector): boolean =>
  tagValueIn(tags, MANAGED_BY_TAG) === SHARER && tagValueIn(tags, selector.tag) === selector.value

/** Every page of a listing, each page one awsCall (with its timeout and retries), until the listing gives no further token. */
const collectPages = <Item>(
  listPage: (token: string | undefined) => Effect.Effect<{ readonly items: ReadonlyArray<Item>; readonly next: string | undefined }, AwsError>
) =>
  Effect.gen(function* () {
    const found: Array<Item> = []
    let token: string | undefined
    do {
      const page = yield* listPage(token)
      found.push(...page.items)
      token = page.next
    } while (token !== undefined && token !== "")
    return found
  })

/**
 * The sharer's EBS snapshot replicas in the client's account and region, every page. With
 * `completedOnly`, only those that can be restored now; else copies still pending too, so that
 * the sharer can take over a copy an earlier attempt started.
 */
export const sharerSnapshotReplicas = (ec2: EC2Client, selector: ReplicaSelector & { readonly completedOnly?: boolean }) =>
  collectPages((nextToken) =>
    awsCall("ec2:DescribeSnapshots", (abortSignal) =>
      ec2.send(
        new DescribeSnapshotsCommand({
          OwnerIds: ["self"],
          Filters: [
            { Name: `tag:${MANAGED_BY_TAG}`, Values: [SHARER] },
            { Name: `tag:${selector.tag}`, Values: [selector.value] },
            ...(selector.completedOnly === true ? [{ Name: "status", Values: ["completed"] }] : [])
          ],
          NextToken: nextToken
        }),
        { abortSignal }
      )
    ).pipe(Effect.map((page) => ({ items: (page.Snapshots ?? []).filter((snapshot) => isSharerReplica(snapshot.Tags, selector)), next: page.NextToken })))
  )

/**
 * The sharer's manual DB snapshot replicas in the client's account and region, every page,
 * whatever their status. DescribeDBSnapshots can't filter by tag, so `instanceId` (the DB
 * instance the replicas were taken of) narrows the listing when it is known.
 */
export const sharerDbSnapshotReplicas = (rds: RDSClient, selector: ReplicaSelector & { readonly instanceId?: string | undefined }) =>
  collectPages((marker) =>
    awsCall("rds:DescribeDBSnapshots", (abortSignal) =>
      rds.send(
        new DescribeDBSnapshotsCommand({
          SnapshotType: "manual",
          ...(selector.instanceId === undefined ? {} : { Filters: [{ Name: "db-instance-id", Values: [selector.instanceId] }] }),
          MaxRecords: 100,
          Marker: marker
        }),
        { abortSignal }
      )
    ).pipe(Effect.map((page) => ({ items: (page.DBSnapshots ?? []).filter((snapshot) => isSharerReplica(snapshot.TagList, selector)), next: page.Marker })))
  )

/**
 * The sharer's manual DB cluster snapshot replicas (Aurora) in the client's account and region,
 * every page, whatever their status. DescribeDBClusterSnapshots can't filter by tag either: each
 * snapshot's TagList is read, and `clusterId` (the DB cluster the replicas were taken of) narrows
 * the listing when it is known.
 */
export const sharerClusterSnapshotReplicas = (rds: RDSClient, selector: ReplicaSelector & { readonly clusterId?: string | undefined }) =>
  collectPages((marker) =>
    awsCall("rds:DescribeDBClusterSnapshots", (abortSignal) =>
      rds.send(
        new DescribeDBClusterSnapshotsCommand({
          SnapshotType: "manual",
          ...(selector.clusterId === undefined ? {} : { Filters: [{ Name: "db-cluster-id", Values: [selector.clusterId] }] }),
          MaxRecords: 100,
          Marker: marker
        }),
        { abortSignal }
      )
    ).pipe(Effect.map((page) => ({ items: (page.DBClusterSnapshots ?? []).filter((snapshot) => isSharerReplica(snapshot.TagList, selector)), next: page.Marker })))
  )
