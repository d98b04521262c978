/** What a failover was asked to bring back: a protected resource (its newest replica) or one recovery point. */
export interface FailoverSource {
  readonly arn: string
  /** RDS: a DB instance and its DB snapshots; Aurora: a DB cluster and its cluster snapshots. */
  readonly kind: "RDS" | "Aurora" | "EBS"
  /** A protected resource's replicas carry its ARN in source-resource; a recovery point's in source-arn. */
  readonly matchTag: string
  /** The DB instance or DB cluster of a resource ARN: narrows the listing of (cluster) snapshots, which can't be filtered by tag. */
  readonly resourceId: string | undefined
}

/** What `failover` was asked to do, as the command line gave it (apps/cli/src/args.ts). */
export interface FailoverRequest {
  readonly source: FailoverSource
  /** The new DB instance's class; for Aurora, the class of the cluster's writer. */
  readonly instanceClass: string
  /** The new DB instance's identifier; for Aurora, the new cluster's (its writer is `<id>-writer`). */
  readonly newInstanceId: string | undefined
  /** RDS and Aurora: the pilot-light network, when it is not the DR region's default VPC. */
  readonly dbSubnetGroup: string | undefined
  readonly securityGroupIds: ReadonlyArray<string>
  /** The DR region; the stack's region when not given. */
  readonly region: string | undefined
  /** EBS: where the new volume goes. */
  readonly zone: string | undefined
  readonly roleArn: string | undefined
  readonly externalId: string | undefined
  readonly json: boolean
}

/** What names the writer instance of a restored cluster after the cluster. */
export const WRITER_SUFFIX = "-writer"

/** The longest identifier of what the failover makes: a cluster's leaves room for its writer's `-writer`. */
export const longestNewId = (kind: FailoverSource["kind"]): number => (kind === "Aurora" ? 63 - WRITER_SUFFIX.length : 63)
