import { CreateAliasCommand, CreateKeyCommand, DescribeKeyCommand } from "@aws-sdk/client-kms"
import { Effect, Layer, Option } from "effect"
import { AwsConfig, Kms, assumeRole, awsCall } from "@backup-actions/aws"
import { EMULATOR_ACCOUNT } from "./emulator"

/** The disaster-recovery side of the local topology: another account, another region. */
export interface DrTopology {
  readonly sourceAccount: string
  readonly destinationAccount: string
  readonly destinationRegion: string
  /** The role the sharer assumes in the destination account. */
  readonly roleName: string
  /** What the role's trust policy requires in sts:ExternalId. */
  readonly externalId: string
  /** The alias of the destination's customer managed key for replicas. */
  readonly keyAlias: string
}

/** The local DR account and region: another account than the emulator's default, another region. */
export const DR_DESTINATION_ACCOUNT = "222222222222"
export const DR_DESTINATION_REGION = "us-west-2"

/**
 * The role an AWS Organizations member account is created with, that the management account
 * assumes to set the account up. Provisioning uses it to act in the destination account.
 */
export const BOOTSTRAP_ROLE_NAME = "OrganizationAccountAccessRole"

/** The local DR topology, with the given parts changed. */
export const drTopology = (overrides: Partial<DrTopology> = {}): DrTopology => ({
  sourceAccount: EMULATOR_ACCOUNT,
  destinationAccount: DR_DESTINATION_ACCOUNT,
  destinationRegion: DR_DESTINATION_REGION,
  roleName: "backup-actions-dr-replicator",
  externalId: "backup-actions-dr",
  keyAlias: "alias/backup-actions-dr",
  ...overrides
})

/** The replicator role the sharer assumes in the destination account. */
export const drRoleArn = (dr: DrTopology): string => `arn:aws:iam::${dr.destinationAccount}:role/${dr.roleName}`

/** The alias as an ARN: a policy can name the key before it exists, and the sharer resolves it. */
export const drKeyAliasArn = (dr: DrTopology): string => `arn:aws:kms:${dr.destinationRegion}:${dr.destinationAccount}:${dr.keyAlias}`

/** The replicator role's trust policy: only the source account, and only with the external id. */
export const replicatorTrustPolicy = (dr: DrTopology) => ({
  Version: "2012-10-17",
  Statement: [
    {
      Effect: "Allow",
      Principal: { AWS: `arn:aws:iam::${dr.sourceAccount}:root` },
      Action: "sts:AssumeRole",
      Condition: { StringEquals: { "sts:ExternalId": dr.externalId } }
    }
  ]
})

/**
 * What the replicator role may do in the destination account: copy and tag snapshots, prune
 * its own, and (for a failover) restore the newest replica into a DB instance or a volume.
 */
export const replicatorPermissions = (dr: DrTopology) => ({
  Version: "2012-10-17",
  Statement: [
    {
      Effect: "Allow",
      Action: ["ec2:CopySnapshot", "ec2:CreateTags", "ec2:DescribeSnapshots", "ec2:DescribeAvailabilityZones", "rds:CopyDBSnapshot", "rds:DescribeDBSnapshots", "rds:CopyDBClusterSnapshot", "rds:DescribeDBClusterSnapshots", "rds:AddTagsToResource"],
      Resource: "*"
    },
    {
      Effect: "Allow",
      Action: ["ec2:DeleteSnapshot", "rds:DeleteDBSnapshot", "rds:DeleteDBClusterSnapshot"],
      Resource: "*",
      Condition: { StringEquals: { "aws:ResourceTag/backup-actions:managed-by": "sharer" } }
    },
    {
      Effect: "Allow",
      Action: ["rds:RestoreDBInstanceFromDBSnapshot", "rds:DescribeDBInstances", "ec2:CreateVolume", "ec2:DescribeVolumes"],
      Resource: "*"
    },
    {
      Effect: "Allow",
      Action: [
        "kms:DescribeKey",
        "kms:CreateGrant",
        "kms:Encrypt",
        "kms:Decrypt",
        "kms:ReEncryptFrom",
        "kms:ReEncryptTo",
        "kms:GenerateDataKey",
        "kms:GenerateDataKeyWithoutPlaintext"
      ],
      Resource: `arn:aws:kms:${dr.destinationRegion}:${dr.destinationAccount}:key/*`
    }
  ]
})

/** The destination key's policy: the account administers it, the replicator role uses it. */
export const destinationKeyPolicy = (dr: DrTopology) => ({
  Version: "2012-10-17",
  Statement: [
    { Sid: "Account", Effect: "Allow", Principal: { AWS: `arn:aws:iam::${dr.destinationAccount}:root` }, Action: "kms:*", Resource: "*" },
    {
      Sid: "Replicator",
      Effect: "Allow",
      Principal: { AWS: drRoleArn(dr) },
      Action: ["kms:DescribeKey", "kms:CreateGrant", "kms:Encrypt", "kms:Decrypt", "kms:ReEncryptFrom", "kms:ReEncryptTo", "kms:GenerateDataKey", "kms:GenerateDataKeyWithoutPlaintext"],
      Resource: "*"
    }
  ]
})

/** What provisionDr made, to put into a replicate rule. */
export interface ProvisionedDr {
  readonly destinationAccount: string
  readonly destinationRegion: string
  readonly roleArn: string
  readonly externalId: string
  readonly keyArn: string
  readonly keyAliasArn: string
}

/** Credentials in the destination account, through its bootstrap role. */
const destinationCredentials = (dr: DrTopology) =>
  assumeRole({ roleArn: `arn:aws:iam::${dr.destinationAccount}:role/${BOOTSTRAP_ROLE_NAME}`, sessionName: "backup-actions-provisioning" })

/** Creates the destination key (or finds it by its alias) with the KMS client in scope. */
const ensureDestinationKey = (dr: DrTopology) =>
  Effect.gen(function* () {
    const kms = yield* Kms
    const existing = yield* awsCall("kms:DescribeKey", (abortSignal) => kms.send(new DescribeKeyCommand({ KeyId: dr.keyAlias }), { abortSignal })).pipe(
      Effect.map((result) => result.KeyMetadata?.Arn),
      Effect.catchIf(
        (error) => error.kind === "not-found",
        () => Effect.succeed(undefined)
      )
    )
    if (existing !== undefined) return existing
    const created = yield* awsCall("kms:CreateKey", (abortSignal) =>
      kms.send(
        new CreateKeyCommand({
          Description: "backup-actions: disaster-recovery replicas",
          KeyUsage: "ENCRYPT_DECRYPT",
          KeySpec: "SYMMETRIC_DEFAULT",
          Policy: JSON.stringify(destinationKeyPolicy(dr)),
          Tags: [{ TagKey: "backup-actions:purpose", TagValue: "dr-replicas" }]
        }),
        { abortSignal }
      )
    )
    const keyId = created.KeyMetadata?.KeyId ?? ""
    yield* awsCall("kms:CreateAlias", (abortSignal) => kms.send(new CreateAliasCommand({ AliasName: dr.keyAlias, TargetKeyId: keyId }), { abortSignal }))
    return created.KeyMetadata?.Arn ?? ""
  })

/**
 * A replicate rule's action into the local DR account: its key (or the one given), its role and
 * external id, 30 days' retention, at most 20 copies at once.
 */
export const drReplicateAction = (dr: DrTopology, options: { readonly kmsKeyId?: string } = {}) => ({
  destinationAccount: dr.destinationAccount,
  destinationRegion: dr.destinationRegion,
  kmsKeyId: options.kmsKeyId ?? drKeyAliasArn(dr),
  roleArn: drRoleArn(dr),
  externalId: dr.externalId,
  retentionDays: 30,
  maxConcurrentCopies: 20
})

/**
 * Provisions the destination side of the DR topology: acting in the destination account
 * through its bootstrap role, a customer managed key (with its alias) in the destination
 * region whose policy lets the replicator role use it. The replicator role itself
 * (replicatorTrustPolicy, replicatorPermissions) is an IAM resource; this project has no IAM
 * client yet, and the emulator's AssumeRole does not require the role to exist.
 */
export const provisionDr = (dr: DrTopology = drTopology()) =>
  Effect.gen(function* () {
    const settings = yield* AwsConfig
    // Another region of the same account needs no role; another account is reached through its bootstrap role.
    const credentials = dr.destinationAccount === dr.sourceAccount ? settings.credentials : Option.some(yield* destinationCredentials(dr))
    const destination = AwsConfig.layer({ ...settings, region: dr.destinationRegion, credentials })
    const keyArn = yield* Effect.scoped(ensureDestinationKey(dr).pipe(Effect.provide(Layer.provide(Kms.Live, destination))))
    const provisioned: ProvisionedDr = {
      destinationAccount: dr.destinationAccount,
      destinationRegion: dr.destinationRegion,
      roleArn: drRoleArn(dr),
      externalId: dr.externalId,
      keyArn,
      keyAliasArn: drKeyAliasArn(dr)
    }
    return provisioned
  })
