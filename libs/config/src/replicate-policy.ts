import { Schema } from "effect"

const AccountId = Schema.String.pipe(
  Schema.pattern(/^\d{12}$/, { message: () => "an AWS account id is 12 digits" })
)

const Region = Schema.String.pipe(
  Schema.pattern(/^[a-z]{2}(-[a-z]+)+-\d+$/, { message: () => "a region looks like eu-west-1" })
)

/** An alias or key of the form alias/aws/... is AWS managed: it can be neither chosen for a copy nor shared. */
const isAwsManagedAlias = (key: string): boolean => /(^|:)alias\/aws\//.test(key)

const DestinationKey = Schema.String.pipe(
  Schema.minLength(1),
  Schema.filter((key) => !isAwsManagedAlias(key) || "kmsKeyId must be a customer managed key of the destination, not an AWS managed alias/aws/... key")
)

const RoleArn = Schema.String.pipe(
  Schema.pattern(/^arn:aws[a-z-]*:iam::\d{12}:role\/[\w+=,.@/-]+$/, { message: () => "roleArn must be an IAM role ARN" })
)

/** The characters and length STS accepts for an external id. */
const ExternalId = Schema.String.pipe(
  Schema.pattern(/^[\w+=,.@:/-]{2,1224}$/, { message: () => "externalId is 2 to 1224 characters of letters, digits and +=,.@:/-" })
)

/** AWS runs at most 20 concurrent snapshot copies per destination region by default (a raisable quota). */
export const DEFAULT_MAX_CONCURRENT_COPIES = 20

/** The account part of an IAM role ARN. */
export const accountOfRoleArn = (roleArn: string): string | undefined => /^arn:[^:]+:iam::(\d{12}):/.exec(roleArn)?.[1]

/**
 * Where the sharer keeps a disaster-recovery copy of a matching recovery point, and for how long.
 * A copy into another account assumes `roleArn` there (with `externalId`, which the role's trust
 * policy requires, so that a confused deputy cannot use the role); a copy within the sharer's own
 * account needs no role.
 */
export const ReplicateAction = Schema.Struct({
  destinationAccount: AccountId,
  destinationRegion: Region,
  /**
   * The destination's own customer managed key (ARN, id, alias or alias ARN, resolved in the
   * destination): a replica never stays on the source's key.
   */
  kmsKeyId: DestinationKey,
  /**
   * RDS and Aurora only, when copying to another account and region: the destination account's
   * key in the source region, for the intermediate copy (a shared encrypted DB or cluster snapshot is copied into
   * the destination account in its own region first); the intermediate is deleted afterwards.
   */
  stagingKmsKeyId: Schema.optional(DestinationKey),
  /** The role the sharer assumes in the destination account. */
  roleArn: Schema.optional(RoleArn),
  /** Required with roleArn: the value the role's trust policy asks for in sts:ExternalId. */
  externalId: Schema.optional(ExternalId),
  /**
   * Days a replica is kept in the destination, counted from the creation time the sharer tagged
   * it with. Older replicas of the same protected resource are deleted, and only those the
   * sharer made. The source side keeps nothing to expire: its share is revoked after the copy
   * and its recovery point follows the backup plan's own lifecycle.
   */
  retentionDays: Schema.optionalWith(Schema.Number.pipe(Schema.int(), Schema.positive()), { default: () => 30 }),
  /** Copies in flight at once per destination account and region; the others wait for a slot. */
  maxConcurrentCopies: Schema.optionalWith(Schema.Number.pipe(Schema.int(), Schema.between(1, 100)), {
    default: () => DEFAULT_MAX_CONCURRENT_COPIES
  })
}).pipe(
  Schema.filter((action) => {
    if (action.roleArn === undefined) {
      return action.externalId === undefined || "externalId is only used with roleArn"
    }
    if (action.externalId === undefined) return "roleArn needs an externalId (the role's trust policy must require it)"
    return (
      accountOfRoleArn(action.roleArn) === action.destinationAccount ||
      `roleArn must be a role in the destination account ${action.destinationAccount}`
    )
  })
)
export type ReplicateAction = typeof ReplicateAction.Type

/** The resource types the sharer replicates: EBS snapshots, RDS DB snapshots and Aurora DB cluster snapshots. */
export const REPLICATE_RESOURCE_TYPES: ReadonlyArray<string> = ["EBS", "RDS", "Aurora"]
