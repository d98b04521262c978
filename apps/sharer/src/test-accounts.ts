import { CopySnapshotCommand, DescribeSnapshotsCommand, EC2Client, type CopySnapshotCommandInput, type DescribeSnapshotsCommandInput } from "@aws-sdk/client-ec2"
import { DescribeKeyCommand, KMSClient } from "@aws-sdk/client-kms"
import {
  CopyDBClusterSnapshotCommand,
  CopyDBSnapshotCommand,
  DBClusterSnapshotNotFoundFault,
  DBSnapshotNotFoundFault,
  DeleteDBClusterSnapshotCommand,
  DeleteDBSnapshotCommand,
  DescribeDBClusterSnapshotsCommand,
  DescribeDBSnapshotsCommand,
  RDSClient,
  type CopyDBClusterSnapshotCommandInput,
  type CopyDBSnapshotCommandInput,
  type DescribeDBClusterSnapshotsCommandInput,
  type DescribeDBSnapshotsCommandInput
} from "@aws-sdk/client-rds"
import { mockClient } from "aws-sdk-client-mock"
import { Layer } from "effect"
import type { ReplicaPlan } from "@backup-actions/config"
import { SourceSharing, type AccountTarget, type RegionClients } from "@backup-actions/aws"
import { fixedAccountAccess } from "@backup-actions/aws/testing"
import type { ReplicaJob } from "./job"
import { CopySlots } from "./slots"
import { MANAGED_BY_TAG, SHARER } from "./tags"

/**
 * For unit tests: mocked clients for the source account and for the destination account, so
 * that the exact requests can be checked where a local run can't make them (or can't at scale).
 */
export const SOURCE_ACCOUNT = "111111111111"
export const DESTINATION_ACCOUNT = "222222222222"
export const SOURCE_REGION = "us-east-1"
export const DESTINATION_REGION = "eu-west-1"
export const DESTINATION_KEY_ARN = `arn:aws:kms:${DESTINATION_REGION}:${DESTINATION_ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab`

const regionClients = (region: string): RegionClients => ({
  region,
  ec2: new EC2Client({ region }),
  kms: new KMSClient({ region }),
  rds: new RDSClient({ region })
})

export const mockAccounts = () => {
  const source = regionClients(SOURCE_REGION)
  const destination = regionClients(DESTINATION_REGION)
  const destinationAtSource = regionClients(SOURCE_REGION)
  const targets: Array<AccountTarget> = []
  const mocks = {
    sourceEc2: mockClient(source.ec2),
    sourceKms: mockClient(source.kms),
    destinationEc2: mockClient(destination.ec2),
    destinationKms: mockClient(destination.kms),
    sourceRds: mockClient(source.rds),
    destinationRds: mockClient(destination.rds),
    /** The destination account in the source region (where RDS stages a cross-region copy). */
    stagingRds: mockClient(destinationAtSource.rds),
    stagingKms: mockClient(destinationAtSource.kms)
  }
  mocks.destinationKms.on(DescribeKeyCommand).resolves({
    KeyMetadata: { KeyId: "1234abcd-12ab-34cd-56ef-1234567890ab", Arn: DESTINATION_KEY_ARN, KeyManager: "CUSTOMER", KeyState: "Enabled" }
  })
  const access = fixedAccountAccess((target) => {
    targets.push(target)
    if (target.region === DESTINATION_REGION) return destination
    return target.roleArn === undefined ? source : destinationAtSource
  })
  const layer = Layer.mergeAll(access, SourceSharing.Live, CopySlots.Live)
  return { ...mocks, targets, layer }
}

export const plan = (overrides: Partial<ReplicaPlan> = {}): ReplicaPlan => ({
  rule: "dr",
  destinationAccount: DESTINATION_ACCOUNT,
  destinationRegion: DESTINATION_REGION,
  kmsKeyId: "alias/dr-replicas",
  roleArn: `arn:aws:iam::${DESTINATION_ACCOUNT}:role/backup-actions-dr-replicator`,
  externalId: "dr-external-id",
  retentionDays: 30,
  maxConcurrentCopies: 20,
  ...overrides
})

export const job = (snapshotId: string, overrides: Partial<ReplicaJob> = {}): ReplicaJob => ({
  recoveryPointArn: `arn:aws:ec2:${SOURCE_REGION}::snapshot/${snapshotId}`,
  resourceArn: `arn:aws:ec2:${SOURCE_REGION}:${SOURCE_ACCOUNT}:volume/vol-0123456789abcdef0`,
  resourceType: "EBS",
  sourceAccount: SOURCE_ACCOUNT,
  sourceRegion: SOURCE_REGION,
  plan: plan(),
  ...overrides
})

/**
 * A destination account whose copies stay "pending" for `pendingPolls` answers to
 * DescribeSnapshots, then complete on the destination's key. It counts the copies made and
 * how many were in flight at once (from CopySnapshot to the first "completed").
 */
export const mockDestinationCopies = (mocks: ReturnType<typeof mockAccounts>, options: { readonly pendingPolls?: number } = {}) => {
  const pollsLeft = new Map<string, number>()
  const copiedFrom = new Map<string, string>()
  let inFlight = 0
  let mostInFlight = 0
  mocks.destinationEc2.on(CopySnapshotCommand).callsFake(async (input: CopySnapshotCommandInput) => {
    inFlight += 1
    mostInFlight = Math.max(mostInFlight, inFlight)
    const id = `snap-0copy${String(copiedFrom.size + 1).padStart(12, "0")}`
    copiedFrom.set(id, input.SourceSnapshotId ?? "")
    pollsLeft.set(id, options.pendingPolls ?? 0)
    return { SnapshotId: id }
  })
  mocks.destinationEc2.on(DescribeSnapshotsCommand).callsFake(async (input: DescribeSnapshotsCommandInput) => {
    const id = input.SnapshotIds?.[0]
    if (id === undefined) return { Snapshots: [] }
    const left = pollsLeft.get(id) ?? 0
    pollsLeft.set(id, left - 1)
    if (left === 0) inFlight -= 1
    const pending = left > 0
    return { Snapshots: [{ SnapshotId: id, State: pending ? "pending" : "completed", Progress: pending ? "40%" : "100%", Encrypted: true, KmsKeyId: DESTINATION_KEY_ARN }] }
  })
  return {
    copiesMade: () => copiedFrom.size,
    /** Each copy's source snapshot id, by the copy's id. */
    copiedFrom: () => new Map(copiedFrom),
    inFlight: () => inFlight,
    mostInFlight: () => mostInFlight
  }
}

/**
 * An account's mocked RDS in which a DB snapshot copy (`instances`) or a DB cluster snapshot
 * copy (`clusters`) is available at once, encrypted with `kmsKeyId` and tagged as the sharer's;
 * a snapshot not copied yet is not found, and deletes succeed.
 */
export const mockRdsCopies = (mock: ReturnType<typeof mockAccounts>["destinationRds"], kmsKeyId: string, of: "instances" | "clusters") => {
  const copied = new Set<string>()
  const copy = { Status: "available", KmsKeyId: kmsKeyId, TagList: [{ Key: MANAGED_BY_TAG, Value: SHARER }] }
  if (of === "instances") {
    mock.on(CopyDBSnapshotCommand).callsFake(async (input: CopyDBSnapshotCommandInput) => {
      copied.add(input.TargetDBSnapshotIdentifier ?? "")
      return { DBSnapshot: { DBSnapshotIdentifier: input.TargetDBSnapshotIdentifier, Status: "creating" } }
    })
    mock.on(DescribeDBSnapshotsCommand).callsFake(async (input: DescribeDBSnapshotsCommandInput) => {
      const identifier = input.DBSnapshotIdentifier
      if (identifier === undefined) return { DBSnapshots: [] }
      if (!copied.has(identifier)) throw new DBSnapshotNotFoundFault({ message: `${identifier} not found`, $metadata: {} })
      return { DBSnapshots: [{ ...copy, DBSnapshotIdentifier: identifier, Encrypted: true }] }
    })
    mock.on(DeleteDBSnapshotCommand).resolves({})
    return
  }
  mock.on(CopyDBClusterSnapshotCommand).callsFake(async (input: CopyDBClusterSnapshotCommandInput) => {
    copied.add(input.TargetDBClusterSnapshotIdentifier ?? "")
    return { DBClusterSnapshot: { DBClusterSnapshotIdentifier: input.TargetDBClusterSnapshotIdentifier, Status: "creating" } }
  })
  mock.on(DescribeDBClusterSnapshotsCommand).callsFake(async (input: DescribeDBClusterSnapshotsCommandInput) => {
    const identifier = input.DBClusterSnapshotIdentifier
    if (identifier === undefined) return { DBClusterSnapshots: [] }
    if (!copied.has(identifier)) throw new DBClusterSnapshotNotFoundFault({ message: `${identifier} not found`, $metadata: {} })
    return { DBClusterSnapshots: [{ ...copy, DBClusterSnapshotIdentifier: identifier, StorageEncrypted: true }] }
  })
  mock.on(DeleteDBClusterSnapshotCommand).resolves({})
}
