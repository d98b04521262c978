/** A DynamoDB backup as its ARN names it: `arn:aws:dynamodb:<region>:<account>:table/<table>/backup/<backup-id>`. */
export interface DynamoDbBackupRef {
  readonly backupArn: string
  readonly partition: string
  readonly region: string
  readonly account: string
  readonly table: string
  readonly backupId: string
  /** The source table's ARN: the backup ARN without its `/backup/<id>` tail. */
  readonly tableArn: string
}

export const parseDynamoDbBackupArn = (arn: string): DynamoDbBackupRef | undefined => {
  const match = /^arn:(aws[a-z-]*):dynamodb:([a-z0-9-]+):(\d{12}):table\/([A-Za-z0-9_.-]{3,255})\/backup\/([A-Za-z0-9_.-]+)$/.exec(arn)
  if (match === null) return undefined
  const [, partition = "", region = "", account = "", table = "", backupId = ""] = match
  return { backupArn: arn, partition, region, account, table, backupId, tableArn: `arn:${partition}:dynamodb:${region}:${account}:table/${table}` }
}

/** An RDS DB snapshot or Aurora cluster snapshot as its ARN names it. */
export interface RdsSnapshotRef {
  readonly snapshotArn: string
  readonly kind: "snapshot" | "cluster-snapshot"
  readonly snapshotName: string
}

export const parseRdsSnapshotArn = (arn: string): RdsSnapshotRef | undefined => {
  const match = /^arn:aws[a-z-]*:rds:[a-z0-9-]+:\d{12}:(snapshot|cluster-snapshot):(.+)$/.exec(arn)
  if (match === null) return undefined
  const kind = match[1] === "cluster-snapshot" ? "cluster-snapshot" : "snapshot"
  return { snapshotArn: arn, kind, snapshotName: match[2] ?? "" }
}

/** An AMI as an EC2 recovery point names it: `arn:aws:ec2:<region>::image/ami-...` (no account). */
export interface AmiRef {
  readonly partition: string
  readonly region: string
  readonly imageId: string
  /** The ARN in the one form both the event path and the sweep use as the ledger key. */
  readonly arn: string
}

/** The ARN of an AMI in the form AWS Backup gives an EC2 recovery point. */
export const amiArn = (partition: string, region: string, imageId: string): string => `arn:${partition}:ec2:${region}::image/${imageId}`

export const parseAmiArn = (arn: string): AmiRef | undefined => {
  const match = /^arn:(aws[a-z-]*):ec2:([a-z0-9-]+):(?:\d{12})?:image\/(ami-[0-9a-f]+)$/.exec(arn)
  if (match === null) return undefined
  const [, partition = "", region = "", imageId = ""] = match
  return { partition, region, imageId, arn: amiArn(partition, region, imageId) }
}

/** The partition of a region: ARNs built for the sweep must equal those AWS Backup sends. */
export const partitionOf = (region: string): string => (region.startsWith("cn-") ? "aws-cn" : region.startsWith("us-gov-") ? "aws-us-gov" : "aws")
