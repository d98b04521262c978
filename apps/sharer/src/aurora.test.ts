import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { CreateKeyCommand, DescribeKeyCommand } from "@aws-sdk/client-kms"
import {
  CopyDBClusterSnapshotCommand,
  DBClusterSnapshotNotFoundFault,
  DeleteDBClusterSnapshotCommand,
  DescribeDBClusterSnapshotsCommand,
  KMSKeyNotAccessibleFault,
  ModifyDBClusterSnapshotAttributeCommand,
  type RDSClient,
  type Tag
} from "@aws-sdk/client-rds"
import { Effect, Layer, TestClock } from "effect"
import { AccountAccess, type AccountAccessShape, awsCall } from "@backup-actions/aws"
import { SharerAccountAccess } from "./accounts"
import type { ReplicaPlan } from "@backup-actions/config"
import { EMULATOR_ACCOUNT, auroraClusterSnapshot, emulatorAwsConfig, emulatorClients, startEmulator, type Emulator } from "@backup-actions/local"
import { replicateClusterSnapshot } from "./aurora"
import { listDbSources } from "./catch-up"
import { DESTINATION_ACCOUNT, DESTINATION_KEY_ARN, DESTINATION_REGION, SOURCE_ACCOUNT, SOURCE_REGION, job, mockAccounts, mockRdsCopies, plan } from "./test-accounts"
import { CopySlots } from "./slots"
import { MANAGED_BY_TAG } from "./tags"

const DAY_MS = 86_400_000
const PROJECT_TAGS: ReadonlyArray<Tag> = [{ Key: "backup-actions:managed", Value: "true" }]

let emulator: Emulator

beforeAll(async () => {
  emulator = await startEmulator({ name: "aurora-test" })
})
afterAll(() => emulator.stop())

/**
 * The sharer's own account access on the emulator (real clients over the wire), recording the
 * body of every RDS request after the SDK's middleware has built it.
 */
const onEmulator = () => {
  const rdsRequests: Array<URLSearchParams> = []
  const recordRequests = (rds: RDSClient) =>
    rds.middlewareStack.add(
      (next) => async (args) => {
        const request = args.request
        if (typeof request === "object" && request !== null && "body" in request && typeof request.body === "string") rdsRequests.push(new URLSearchParams(request.body))
        return next(args)
      },
      { step: "finalizeRequest", name: "recordRdsRequests" }
    )
  const recording = Layer.effect(
    AccountAccess,
    Effect.map(AccountAccess, (live): AccountAccessShape => ({
      ...live,
      clients: (target) => Effect.tap(live.clients(target), (clients) => Effect.sync(() => recordRequests(clients.rds)))
    }))
  ).pipe(Layer.provide(SharerAccountAccess), Layer.provide(Layer.merge(emulatorClients(emulator.endpoint), emulatorAwsConfig(emulator.endpoint))))
  return { rdsRequests, layer: Layer.merge(recording, CopySlots.Live) }
}

describe("Aurora cluster snapshot replicas on the emulator", () => {
  it.effect("copies a cluster snapshot to another region on the destination's key with the sharer's tags, pre-signed in the source region, once", () => {
    const { rdsRequests, layer } = onEmulator()
    return Effect.gen(function* () {
      // Prepare: a tagged cluster snapshot in us-east-1, the destination's key in us-west-2
      yield* TestClock.setTime(Date.now())
      const access = yield* AccountAccess
      const source = yield* access.clients({ region: "us-east-1" })
      const destination = yield* access.clients({ region: "us-west-2" })
      const sourceArn = yield* auroraClusterSnapshot(source.rds, "orders", "awsbackup-job-aurora-0001", PROJECT_TAGS)
      const key = yield* awsCall("kms:CreateKey", (abortSignal) => destination.kms.send(new CreateKeyCommand({ Description: "DR replicas" }), { abortSignal }))
      const keyArn = key.KeyMetadata?.Arn ?? ""
      const resourceArn = `arn:aws:rds:us-east-1:${EMULATOR_ACCOUNT}:cluster:orders`
      const sameAccount: ReplicaPlan = { rule: "dr-aurora", destinationAccount: EMULATOR_ACCOUNT, destinationRegion: "us-west-2", kmsKeyId: keyArn, retentionDays: 30, maxConcurrentCopies: 20 }
      const auroraJob = { recoveryPointArn: sourceArn, resourceArn, resourceType: "Aurora", sourceAccount: EMULATOR_ACCOUNT, sourceRegion: "us-east-1", plan: sameAccount }
      // Act
      const result = yield* replicateClusterSnapshot(auroraJob)
      // Assess: the outcome
      assert.strictEqual(result._tag, "Succeeded", result.outcome.reason)
      assert.strictEqual(result.outcome.replicaArn, `arn:aws:rds:us-west-2:${EMULATOR_ACCOUNT}:cluster-snapshot:dr-awsbackup-job-aurora-0001`)
      assert.strictEqual(result.outcome.kmsKeyId, keyArn)
      assert.isAtLeast(result.outcome.replicaAgeSeconds ?? -1, 0)
      // Assess: the replica in us-west-2, available, on the destination's key, with the sharer's tags and not the source's
      const described = yield* awsCall("rds:DescribeDBClusterSnapshots", (abortSignal) =>
        destination.rds.send(new DescribeDBClusterSnapshotsCommand({ DBClusterSnapshotIdentifier: "dr-awsbackup-job-aurora-0001" }), { abortSignal })
      )
      const replica = described.DBClusterSnapshots?.[0]
      assert.strictEqual(replica?.Status, "available")
      assert.strictEqual(replica?.StorageEncrypted, true)
      assert.strictEqual(replica?.KmsKeyId, keyArn)
      const tags = Object.fromEntries((replica?.TagList ?? []).map((tag) => [tag.Key, tag.Value]))
      assert.deepInclude(tags, {
        "backup-actions:managed-by": "sharer",
        "backup-actions:source-arn": sourceArn,
        "backup-actions:source-resource": resourceArn,
        "backup-actions:source-account": EMULATOR_ACCOUNT,
        "backup-actions:rule": "dr-aurora",
        Name: "DR replica of awsbackup-job-aurora-0001"
      })
      assert.notProperty(tags, "backup-actions:managed")
      // Assess: the copy went to us-west-2 with a URL pre-signed for us-east-1 by the SDK
      const copies = rdsRequests.filter((request) => request.get("Action") === "CopyDBClusterSnapshot")
      assert.strictEqual(copies.length, 1)
      assert.strictEqual(copies[0]?.get("SourceDBClusterSnapshotIdentifier"), sourceArn)
      assert.strictEqual(copies[0]?.get("CopyTags"), "false")
      const presigned = new URL(copies[0]?.get("PreSignedUrl") ?? "https://missing.invalid")
      assert.strictEqual(presigned.hostname, "rds.us-east-1.amazonaws.com")
      assert.strictEqual(presigned.searchParams.get("Action"), "CopyDBClusterSnapshot")
      assert.strictEqual(presigned.searchParams.get("DestinationRegion"), "us-west-2")
      assert.strictEqual(presigned.searchParams.get("SourceDBClusterSnapshotIdentifier"), sourceArn)
      assert.strictEqual(presigned.searchParams.get("KmsKeyId"), keyArn)
      assert.match(presigned.searchParams.get("X-Amz-Credential") ?? "", /\/us-east-1\/rds\/aws4_request$/)

      // Act: the same job again, as after a crash between the copy and the ledger's write
      const again = yield* replicateClusterSnapshot(auroraJob)
      // Assess: the earlier copy is taken over, not made twice
      assert.strictEqual(again._tag, "Succeeded", again.outcome.reason)
      assert.strictEqual(rdsRequests.filter((request) => request.get("Action") === "CopyDBClusterSnapshot").length, 1)
    }).pipe(Effect.scoped, Effect.provide(layer))
  })

  it.effect("lists the project's cluster snapshots as Aurora sources for the catch-up, and neither the sharer's replicas nor anyone else's", () =>
    Effect.gen(function* () {
      // Prepare: in a region of its own, three snapshots of one cluster
      const access = yield* AccountAccess
      const clients = yield* access.clients({ region: "eu-central-1" })
      const projects = yield* auroraClusterSnapshot(clients.rds, "inventory", "inventory-1", PROJECT_TAGS)
      yield* auroraClusterSnapshot(clients.rds, "inventory", "someone-elses", [])
      yield* auroraClusterSnapshot(clients.rds, "inventory", "dr-inventory-0", [...PROJECT_TAGS, { Key: MANAGED_BY_TAG, Value: "sharer" }])
      // Act
      const sources = yield* listDbSources(clients, Date.now() - 7 * DAY_MS, ["Aurora"])
      // Assess
      assert.deepStrictEqual(sources, [
        { recoveryPointArn: projects, resourceArn: `arn:aws:rds:eu-central-1:${EMULATOR_ACCOUNT}:cluster:inventory`, resourceType: "Aurora", sourceAccount: EMULATOR_ACCOUNT }
      ])
    }).pipe(Effect.scoped, Effect.provide(onEmulator().layer))
  )
})

const SOURCE_NAME = "awsbackup:job-5678efgh"
const SOURCE_ARN = `arn:aws:rds:${SOURCE_REGION}:${SOURCE_ACCOUNT}:cluster-snapshot:${SOURCE_NAME}`
const SOURCE_KEY = `arn:aws:kms:${SOURCE_REGION}:${SOURCE_ACCOUNT}:key/source-cmk`
const STAGING_KEY = `arn:aws:kms:${SOURCE_REGION}:${DESTINATION_ACCOUNT}:key/staging-cmk`
const STAGING_NAME = "dr-staging-awsbackup-job-5678efgh"
const REPLICA_NAME = "dr-awsbackup-job-5678efgh"

const clusterJob = (overrides: Partial<ReplicaPlan> = {}) =>
  job("unused", {
    recoveryPointArn: SOURCE_ARN,
    resourceArn: `arn:aws:rds:${SOURCE_REGION}:${SOURCE_ACCOUNT}:cluster:orders`,
    resourceType: "Aurora",
    plan: plan({ stagingKmsKeyId: "alias/dr-staging", ...overrides })
  })

/** The source account's available cluster snapshot on `keyManager`'s key. */
const sourceOnKey = (mocks: ReturnType<typeof mockAccounts>, keyManager: "CUSTOMER" | "AWS") => {
  mocks.sourceRds.on(DescribeDBClusterSnapshotsCommand).resolves({
    DBClusterSnapshots: [
      { DBClusterSnapshotIdentifier: SOURCE_NAME, DBClusterIdentifier: "orders", Status: "available", StorageEncrypted: true, KmsKeyId: SOURCE_KEY, SnapshotCreateTime: new Date(0) }
    ]
  })
  mocks.sourceRds.on(ModifyDBClusterSnapshotAttributeCommand).resolves({})
  mocks.sourceKms.on(DescribeKeyCommand).resolves({ KeyMetadata: { KeyId: "source-cmk", Arn: SOURCE_KEY, KeyManager: keyManager, KeyState: "Enabled" } })
  mocks.stagingKms.on(DescribeKeyCommand).resolves({ KeyMetadata: { KeyId: "staging-cmk", Arn: STAGING_KEY, KeyManager: "CUSTOMER", KeyState: "Enabled" } })
}

const shareCalls = (mocks: ReturnType<typeof mockAccounts>) => mocks.sourceRds.commandCalls(ModifyDBClusterSnapshotAttributeCommand).map((call) => call.args[0].input)

const SHARED_AND_TAKEN_BACK = [
  { DBClusterSnapshotIdentifier: SOURCE_NAME, AttributeName: "restore", ValuesToAdd: [DESTINATION_ACCOUNT] },
  { DBClusterSnapshotIdentifier: SOURCE_NAME, AttributeName: "restore", ValuesToRemove: [DESTINATION_ACCOUNT] }
]

describe("replicating an Aurora cluster snapshot into another account (exact requests)", () => {
  it.effect("shares it, stages a copy in the source region, copies that across on the destination's key, and takes the share back", () =>
    Effect.gen(function* () {
      // Prepare
      const mocks = mockAccounts()
      sourceOnKey(mocks, "CUSTOMER")
      mockRdsCopies(mocks.stagingRds, STAGING_KEY, "clusters")
      mockRdsCopies(mocks.destinationRds, DESTINATION_KEY_ARN, "clusters")
      // Act
      const result = yield* replicateClusterSnapshot(clusterJob()).pipe(Effect.provide(mocks.layer))
      // Assess: shared through `restore`, then taken back
      assert.deepStrictEqual(shareCalls(mocks), SHARED_AND_TAKEN_BACK)
      // Assess: the intermediate copy in the source region, made by the destination account on its staging key
      const staged = mocks.stagingRds.commandCalls(CopyDBClusterSnapshotCommand).map((call) => call.args[0].input)
      assert.strictEqual(staged.length, 1)
      assert.deepInclude(staged[0], { SourceDBClusterSnapshotIdentifier: SOURCE_ARN, TargetDBClusterSnapshotIdentifier: STAGING_NAME, KmsKeyId: STAGING_KEY, CopyTags: false })
      // Assess: the cross-region copy from the intermediate's ARN, on the destination's key, with the sharer's tags only
      const copied = mocks.destinationRds.commandCalls(CopyDBClusterSnapshotCommand).map((call) => call.args[0].input)
      assert.strictEqual(copied.length, 1)
      assert.deepInclude(copied[0], {
        SourceDBClusterSnapshotIdentifier: `arn:aws:rds:${SOURCE_REGION}:${DESTINATION_ACCOUNT}:cluster-snapshot:${STAGING_NAME}`,
        TargetDBClusterSnapshotIdentifier: REPLICA_NAME,
        KmsKeyId: DESTINATION_KEY_ARN,
        CopyTags: false
      })
      assert.deepStrictEqual(
        (copied[0]?.Tags ?? []).map((tag) => tag.Key),
        [
          "backup-actions:managed-by",
          "backup-actions:source-arn",
          "backup-actions:source-resource",
          "backup-actions:source-account",
          "backup-actions:created-at",
          "backup-actions:source-created-at",
          "backup-actions:rule",
          "Name"
        ]
      )
      // Assess: the intermediate is deleted, the source untouched, and retention looked at this cluster's replicas only
      assert.deepStrictEqual(mocks.stagingRds.commandCalls(DeleteDBClusterSnapshotCommand).map((call) => call.args[0].input), [{ DBClusterSnapshotIdentifier: STAGING_NAME }])
      assert.strictEqual(mocks.sourceRds.commandCalls(DeleteDBClusterSnapshotCommand).length, 0)
      const listed = mocks.destinationRds.commandCalls(DescribeDBClusterSnapshotsCommand).map((call) => call.args[0].input)
      assert.deepInclude(listed, { SnapshotType: "manual", Filters: [{ Name: "db-cluster-id", Values: ["orders"] }], MaxRecords: 100, Marker: undefined })
      assert.strictEqual(result._tag, "Succeeded")
      assert.strictEqual(result.outcome.replicaArn, `arn:aws:rds:${DESTINATION_REGION}:${DESTINATION_ACCOUNT}:cluster-snapshot:${REPLICA_NAME}`)
    })
  )

  it.effect("takes the share back and keeps the source when the destination account's copy is refused", () =>
    Effect.gen(function* () {
      // Prepare: another account in the source's region, whose copy is refused
      const mocks = mockAccounts()
      sourceOnKey(mocks, "CUSTOMER")
      mocks.stagingRds.on(DescribeDBClusterSnapshotsCommand).rejects(new DBClusterSnapshotNotFoundFault({ message: `${REPLICA_NAME} not found`, $metadata: {} }))
      mocks.stagingRds.on(CopyDBClusterSnapshotCommand).rejects(new KMSKeyNotAccessibleFault({ message: "the key is not accessible", $metadata: {} }))
      // Act
      const result = yield* replicateClusterSnapshot(clusterJob({ destinationRegion: SOURCE_REGION })).pipe(Effect.provide(mocks.layer))
      // Assess
      assert.strictEqual(result._tag, "Failed")
      assert.match(result.outcome.reason ?? "", /^rds:CopyDBClusterSnapshot failed: KMSKeyNotAccessibleFault: the key is not accessible/)
      assert.strictEqual(result.outcome.status, "failed")
      assert.deepStrictEqual(shareCalls(mocks), SHARED_AND_TAKEN_BACK)
      assert.strictEqual(mocks.sourceRds.commandCalls(DeleteDBClusterSnapshotCommand).length, 0)
    })
  )

  it.effect("fails with the fix, and shares and copies nothing, when the source is on the default aws/rds key", () =>
    Effect.gen(function* () {
      // Prepare
      const mocks = mockAccounts()
      sourceOnKey(mocks, "AWS")
      mockRdsCopies(mocks.destinationRds, DESTINATION_KEY_ARN, "clusters")
      // Act
      const result = yield* replicateClusterSnapshot(clusterJob()).pipe(Effect.provide(mocks.layer))
      // Assess
      assert.strictEqual(result._tag, "Failed")
      assert.match(
        result.outcome.reason ?? "",
        /source DB cluster snapshot awsbackup:job-5678efgh is encrypted with the default key aws\/rds, which can't be shared with account 222222222222; fix: copy it \(or back the cluster up\) with a customer managed key/
      )
      assert.deepStrictEqual(shareCalls(mocks), [])
      assert.strictEqual(mocks.destinationRds.commandCalls(CopyDBClusterSnapshotCommand).length, 0)
      assert.strictEqual(mocks.stagingRds.commandCalls(CopyDBClusterSnapshotCommand).length, 0)
    })
  )

  it.effect("refuses a DB instance snapshot ARN on the cluster path, naming what it expected", () =>
    Effect.gen(function* () {
      // Prepare
      const mocks = mockAccounts()
      const instanceSnapshot = { ...clusterJob(), recoveryPointArn: `arn:aws:rds:${SOURCE_REGION}:${SOURCE_ACCOUNT}:snapshot:${SOURCE_NAME}` }
      // Act
      const result = yield* replicateClusterSnapshot(instanceSnapshot).pipe(Effect.provide(mocks.layer))
      // Assess
      assert.strictEqual(result._tag, "Failed")
      assert.match(result.outcome.reason ?? "", /is not an RDS DB cluster snapshot ARN/)
    })
  )
})
