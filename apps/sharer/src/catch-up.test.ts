import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import {
  CopySnapshotCommand,
  DescribeSnapshotsCommand,
  ModifySnapshotAttributeCommand,
  type CopySnapshotCommandInput,
  type DescribeSnapshotsCommandInput,
  type Snapshot
} from "@aws-sdk/client-ec2"
import { BackupClient, ListRecoveryPointsByBackupVaultCommand } from "@aws-sdk/client-backup"
import { EventBridgeClient, PutEventsCommand } from "@aws-sdk/client-eventbridge"
import { DescribeDBSnapshotsCommand } from "@aws-sdk/client-rds"
import { mockClient } from "aws-sdk-client-mock"
import { Effect, Layer, TestClock } from "effect"
import { AccountAccess, AwsConfig, Backup, DynamoDb, EventBridge } from "@backup-actions/aws"
import { fixedProtectedResources } from "@backup-actions/aws/testing"
import { PolicySource, type Policy } from "@backup-actions/config"
import { Publisher } from "@backup-actions/consumer"
import { Ledger } from "@backup-actions/ledger"
import { emulatorAwsConfig, emulatorClients, provisionService, serviceSettingsFor, startEmulator, type Emulator, type ProvisionedStack } from "@backup-actions/local"
import { catchUpPlanFor, catchUpReplicas, listDbSources, listEbsSources } from "./catch-up"
import { DESTINATION_KEY_ARN, SOURCE_ACCOUNT, SOURCE_REGION, mockAccounts, plan } from "./test-accounts"

const SOURCES = 1_000
const NOW = Date.parse("2026-11-22T12:00:00Z")
const DAY_MS = 86_400_000

/** The ledger (DynamoDB) runs on the emulator: its conditional writes are what makes a step run once. */
let emulator: Emulator
let stack: ProvisionedStack

beforeAll(async () => {
  emulator = await startEmulator({ name: "catch-up-test" })
  stack = await Effect.runPromise(
    Effect.scoped(provisionService({ prefix: "catch-up-test", service: "sharer", patterns: [] }).pipe(Effect.provide(emulatorClients(emulator.endpoint))))
  )
})
afterAll(() => emulator.stop())

const policyOf = (rules: Policy["rules"]): Policy => ({ rules })
const ebsRule = { name: "dr", match: { resourceTypes: ["EBS"] }, replicate: plan() }

const sourceSnapshot = (index: number): Snapshot => ({
  SnapshotId: `snap-0src${String(index).padStart(13, "0")}`,
  VolumeId: `vol-${String(index).padStart(17, "0")}`,
  OwnerId: SOURCE_ACCOUNT,
  State: "completed",
  VolumeSize: 8,
  StartTime: new Date(NOW - DAY_MS),
  Tags: [{ Key: "backup-actions:managed", Value: "true" }]
})

/** The sharer's layers: accounts, EC2, KMS, AWS Backup and EventBridge mocked; the ledger on the emulator. */
const catchUpLayer = (mocks: ReturnType<typeof mockAccounts>, events: EventBridgeClient, policy: Policy, backup = new BackupClient({ region: SOURCE_REGION })) => {
  const settings = serviceSettingsFor(stack, "sharer")
  const ledger = Ledger.Live.pipe(Layer.provide(Layer.provide(DynamoDb.Live, emulatorAwsConfig(emulator.endpoint))), Layer.provide(settings))
  const publisher = Publisher.Live.pipe(Layer.provide(Layer.succeed(EventBridge, events)), Layer.provide(settings))
  return Layer.mergeAll(
    mocks.layer,
    ledger,
    publisher,
    settings,
    PolicySource.layer(policy),
    AwsConfig.layer({ region: SOURCE_REGION }),
    Layer.succeed(Backup, backup),
    fixedProtectedResources()
  )
}

describe("the scheduled catch-up", () => {
  it.effect("replicates each of 1,000 listed snapshots exactly once within the destination's bound, and nothing on the next run", () =>
    Effect.gen(function* () {
      // Prepare: 1,000 of the project's snapshots listed over four pages; copies that take 50 ms each
      yield* TestClock.setTime(NOW)
      const mocks = mockAccounts()
      const events = new EventBridgeClient({ region: SOURCE_REGION })
      const eventsMock = mockClient(events)
      const published: Array<string> = []
      eventsMock.on(PutEventsCommand).callsFake(async (input: { Entries?: Array<{ Detail?: string }> }) => {
        published.push(...(input.Entries ?? []).map((entry) => entry.Detail ?? ""))
        return { FailedEntryCount: 0, Entries: [{ EventId: "event" }] }
      })
      const listed = Array.from({ length: SOURCES }, (_, index) => sourceSnapshot(index))
      mocks.sourceEc2.on(DescribeSnapshotsCommand).callsFake(async (input: DescribeSnapshotsCommandInput) => {
        const id = input.SnapshotIds?.[0]
        if (id !== undefined) return { Snapshots: listed.filter((snapshot) => snapshot.SnapshotId === id) }
        const start = Number(input.NextToken ?? "0")
        const end = start + 250
        return { Snapshots: listed.slice(start, end), ...(end < listed.length ? { NextToken: String(end) } : {}) }
      })
      mocks.sourceEc2.on(ModifySnapshotAttributeCommand).resolves({})
      let inFlight = 0
      let mostInFlight = 0
      const copiedFrom = new Map<string, string>()
      mocks.destinationEc2.on(CopySnapshotCommand).callsFake(async (input: CopySnapshotCommandInput) => {
        inFlight += 1
        mostInFlight = Math.max(mostInFlight, inFlight)
        const id = `snap-0copy${String(copiedFrom.size + 1).padStart(12, "0")}`
        copiedFrom.set(id, input.SourceSnapshotId ?? "")
        return { SnapshotId: id }
      })
      mocks.destinationEc2.on(DescribeSnapshotsCommand).callsFake(async (input: DescribeSnapshotsCommandInput) => {
        const id = input.SnapshotIds?.[0]
        if (id === undefined) return { Snapshots: [] }
        // The copy takes a moment (real time, outside the test clock), holding its slot meanwhile
        await new Promise((resolve) => setTimeout(resolve, 50))
        inFlight -= 1
        return { Snapshots: [{ SnapshotId: id, State: "completed", Encrypted: true, KmsKeyId: DESTINATION_KEY_ARN }] }
      })
      const layer = catchUpLayer(mocks, events, policyOf([ebsRule]))
      // Act
      const first = yield* catchUpReplicas({ lookBackDays: 7 }).pipe(Effect.provide(layer))
      const second = yield* catchUpReplicas({ lookBackDays: 7 }).pipe(Effect.provide(layer))
      // Assess: every source copied once, never more than 20 at a time, and announced once
      assert.strictEqual(first.listed, SOURCES)
      assert.strictEqual(first.replicated, SOURCES)
      assert.strictEqual(first.failed + first.errors + first.busy, 0)
      assert.deepStrictEqual([...copiedFrom.values()].sort(), listed.map((snapshot) => snapshot.SnapshotId).sort())
      assert.isAtMost(mostInFlight, 20)
      // Copies overlapped (how many depends on the machine's speed; scale.test.ts shows the bound is reached)
      assert.isAtLeast(mostInFlight, 2)
      const announced = published.map((detail): { sourceArn: string; status: string } => JSON.parse(detail))
      assert.strictEqual(new Set(announced.map((detail) => detail.sourceArn)).size, SOURCES)
      assert.isTrue(announced.every((detail) => detail.status === "replicated"))
      // Assess: the second run found every step finished and copied nothing
      assert.strictEqual(second.alreadyReplicated, SOURCES)
      assert.strictEqual(second.replicated, 0)
      assert.strictEqual(copiedFrom.size, SOURCES)
      assert.strictEqual(published.length, SOURCES)
    }),
    600_000
  )

  it.effect("asks EC2 for the project's completed snapshots and keeps only those of the window that are not the sharer's own replicas", () =>
    Effect.gen(function* () {
      // Prepare
      yield* TestClock.setTime(NOW)
      const mocks = mockAccounts()
      mocks.sourceEc2.on(DescribeSnapshotsCommand).resolves({
        Snapshots: [
          sourceSnapshot(1),
          { ...sourceSnapshot(2), StartTime: new Date(NOW - 8 * DAY_MS) },
          { ...sourceSnapshot(3), Tags: [...(sourceSnapshot(3).Tags ?? []), { Key: "backup-actions:managed-by", Value: "sharer" }] }
        ]
      })
      // Act
      const sources = yield* Effect.scoped(
        Effect.gen(function* () {
          const access = yield* AccountAccess
          const source = yield* access.clients({ region: SOURCE_REGION })
          return yield* listEbsSources(source, NOW - 7 * DAY_MS)
        }).pipe(Effect.provide(mocks.layer))
      )
      // Assess
      assert.deepStrictEqual(
        mocks.sourceEc2.commandCalls(DescribeSnapshotsCommand).map((call) => call.args[0].input),
        [
          {
            OwnerIds: ["self"],
            Filters: [
              { Name: "tag:backup-actions:managed", Values: ["true"] },
              { Name: "status", Values: ["completed"] }
            ],
            MaxResults: 1000,
            NextToken: undefined
          }
        ]
      )
      assert.deepStrictEqual(sources, [
        {
          recoveryPointArn: `arn:aws:ec2:${SOURCE_REGION}::snapshot/${sourceSnapshot(1).SnapshotId}`,
          resourceArn: `arn:aws:ec2:${SOURCE_REGION}:${SOURCE_ACCOUNT}:volume/${sourceSnapshot(1).VolumeId}`,
          resourceType: "EBS",
          sourceAccount: SOURCE_ACCOUNT
        }
      ])
    })
  )

  it.effect("lists the DB snapshots AWS Backup made and the manual ones, every page, by their tags", () =>
    Effect.gen(function* () {
      // Prepare
      const mocks = mockAccounts()
      const dbSnapshot = (name: string, tags: ReadonlyArray<{ Key: string; Value: string }>) => ({
        DBSnapshotIdentifier: name,
        DBSnapshotArn: `arn:aws:rds:${SOURCE_REGION}:${SOURCE_ACCOUNT}:snapshot:${name}`,
        DBInstanceIdentifier: "orders",
        Status: "available",
        SnapshotCreateTime: new Date(NOW - DAY_MS),
        TagList: [...tags]
      })
      const project = [{ Key: "backup-actions:managed", Value: "true" }]
      mocks.sourceRds
        .on(DescribeDBSnapshotsCommand, { SnapshotType: "awsbackup", Marker: undefined })
        .resolves({ DBSnapshots: [dbSnapshot("awsbackup-job-1", project)], Marker: "page-2" })
        .on(DescribeDBSnapshotsCommand, { SnapshotType: "awsbackup", Marker: "page-2" })
        .resolves({ DBSnapshots: [dbSnapshot("awsbackup-job-2", project)] })
        .on(DescribeDBSnapshotsCommand, { SnapshotType: "manual" })
        .resolves({ DBSnapshots: [dbSnapshot("someone-elses", []), dbSnapshot("dr-replica", [...project, { Key: "backup-actions:managed-by", Value: "sharer" }])] })
      // Act
      const sources = yield* Effect.scoped(
        Effect.gen(function* () {
          const access = yield* AccountAccess
          return yield* listDbSources(yield* access.clients({ region: SOURCE_REGION }), NOW - 7 * DAY_MS)
        }).pipe(Effect.provide(mocks.layer))
      )
      // Assess
      assert.deepStrictEqual(
        mocks.sourceRds.commandCalls(DescribeDBSnapshotsCommand).map((call) => call.args[0].input),
        [
          { SnapshotType: "awsbackup", MaxRecords: 100, Marker: undefined },
          { SnapshotType: "awsbackup", MaxRecords: 100, Marker: "page-2" },
          { SnapshotType: "manual", MaxRecords: 100, Marker: undefined }
        ]
      )
      assert.deepStrictEqual(
        sources.map((source) => [source.recoveryPointArn, source.resourceArn]),
        ["awsbackup-job-1", "awsbackup-job-2"].map((name) => [
          `arn:aws:rds:${SOURCE_REGION}:${SOURCE_ACCOUNT}:snapshot:${name}`,
          `arn:aws:rds:${SOURCE_REGION}:${SOURCE_ACCOUNT}:db:orders`
        ])
      )
    })
  )

  it.effect("asks AWS Backup which named vault holds each source and replicates it by the rule for that vault", () =>
    Effect.gen(function* () {
      // Prepare: a rule for vault "dr" first, then one for every EBS snapshot; one source in "dr", one elsewhere
      yield* TestClock.setTime(NOW)
      const mocks = mockAccounts()
      const events = new EventBridgeClient({ region: SOURCE_REGION })
      const published: Array<{ sourceArn: string; rule?: string }> = []
      mockClient(events)
        .on(PutEventsCommand)
        .callsFake(async (input: { Entries?: Array<{ Detail?: string }> }) => {
          published.push(...(input.Entries ?? []).map((entry) => JSON.parse(entry.Detail ?? "{}")))
          return { FailedEntryCount: 0, Entries: [{ EventId: "event" }] }
        })
      // Indexes the first test did not replicate: the ledger is shared by the file's tests
      const [inVault, elsewhere] = [sourceSnapshot(SOURCES + 1), sourceSnapshot(SOURCES + 2)]
      const arnOf = (snapshot: Snapshot) => `arn:aws:ec2:${SOURCE_REGION}::snapshot/${snapshot.SnapshotId ?? ""}`
      mocks.sourceEc2.on(DescribeSnapshotsCommand).resolves({ Snapshots: [inVault, elsewhere] })
      mocks.sourceEc2.on(ModifySnapshotAttributeCommand).resolves({})
      mocks.destinationEc2.on(CopySnapshotCommand).callsFake(async (input: CopySnapshotCommandInput) => ({ SnapshotId: (input.SourceSnapshotId ?? "").replace("0src", "0cpy") }))
      mocks.destinationEc2.on(DescribeSnapshotsCommand).callsFake(async (input: DescribeSnapshotsCommandInput) => ({
        Snapshots: (input.SnapshotIds ?? []).map((id) => ({ SnapshotId: id, State: "completed", Encrypted: true, KmsKeyId: DESTINATION_KEY_ARN }))
      }))
      const backup = new BackupClient({ region: SOURCE_REGION })
      const backupMock = mockClient(backup)
      backupMock
        .on(ListRecoveryPointsByBackupVaultCommand, { NextToken: undefined })
        .resolves({ RecoveryPoints: [{ RecoveryPointArn: "arn:aws:ec2:us-east-1::snapshot/snap-0someoneelse00" }], NextToken: "page-2" })
        .on(ListRecoveryPointsByBackupVaultCommand, { NextToken: "page-2" })
        .resolves({ RecoveryPoints: [{ RecoveryPointArn: arnOf(inVault) }] })
      const byVault = { name: "by-vault", match: { resourceTypes: ["EBS"], vaults: ["dr"] }, replicate: plan({ rule: "by-vault", retentionDays: 90 }) }
      const layer = catchUpLayer(mocks, events, policyOf([byVault, ebsRule]), backup)
      // Act
      const summary = yield* catchUpReplicas({ lookBackDays: 7 }).pipe(Effect.provide(layer))
      // Assess: AWS Backup asked for the named vault's recovery points of the window, every page
      assert.deepStrictEqual(
        backupMock.commandCalls(ListRecoveryPointsByBackupVaultCommand).map((call) => call.args[0].input),
        [
          { BackupVaultName: "dr", ByCreatedAfter: new Date(NOW - 7 * DAY_MS), MaxResults: 1000, NextToken: undefined },
          { BackupVaultName: "dr", ByCreatedAfter: new Date(NOW - 7 * DAY_MS), MaxResults: 1000, NextToken: "page-2" }
        ]
      )
      // Assess: each source replicated once, by the rule its vault selects
      assert.strictEqual(summary.undecided, 0)
      assert.strictEqual(summary.replicated, 2)
      assert.deepStrictEqual(
        published.map((detail) => [detail.sourceArn, detail.rule]).sort(),
        [
          [arnOf(inVault), "by-vault"],
          [arnOf(elsewhere), "dr"]
        ].sort()
      )
    })
  )

  it.effect("leaves the sources whose rule depends on the vault to their events when AWS Backup cannot list the vault", () =>
    Effect.gen(function* () {
      // Prepare
      yield* TestClock.setTime(NOW)
      const mocks = mockAccounts()
      const events = new EventBridgeClient({ region: SOURCE_REGION })
      mockClient(events).on(PutEventsCommand).resolves({ FailedEntryCount: 0, Entries: [{ EventId: "event" }] })
      mocks.sourceEc2.on(DescribeSnapshotsCommand).resolves({ Snapshots: [sourceSnapshot(SOURCES + 3)] })
      const backup = new BackupClient({ region: SOURCE_REGION })
      mockClient(backup)
        .on(ListRecoveryPointsByBackupVaultCommand)
        .rejects(Object.assign(new Error("not authorized to perform backup:ListRecoveryPointsByBackupVault"), { name: "AccessDeniedException", $metadata: { httpStatusCode: 403 } }))
      const byVault = { name: "by-vault", match: { resourceTypes: ["EBS"], vaults: ["dr"] }, replicate: plan({ rule: "by-vault" }) }
      // Act
      const summary = yield* catchUpReplicas({ lookBackDays: 7 }).pipe(Effect.provide(catchUpLayer(mocks, events, policyOf([byVault, ebsRule]), backup)))
      // Assess: nothing copied, the source counted as left to its event
      assert.strictEqual(summary.undecided, 1)
      assert.strictEqual(summary.replicated, 0)
      assert.strictEqual(mocks.destinationEc2.commandCalls(CopySnapshotCommand).length, 0)
    })
  )

  it("leaves a source to its event when the first rule that matches it otherwise names vaults", () => {
    // Prepare
    const byVault = { name: "by-vault", match: { resourceTypes: ["EBS"], vaults: ["dr"] }, replicate: plan({ destinationRegion: "eu-central-1" }) }
    const facts = { resourceType: "EBS", resourceArn: `arn:aws:ec2:${SOURCE_REGION}:${SOURCE_ACCOUNT}:volume/vol-1` }
    // Act
    const vaultFirst = catchUpPlanFor(policyOf([byVault, ebsRule]), facts)
    const vaultLater = catchUpPlanFor(policyOf([ebsRule, byVault]), facts)
    const otherType = catchUpPlanFor(policyOf([ebsRule]), { ...facts, resourceType: "RDS" })
    // Assess
    assert.strictEqual(vaultFirst, "depends-on-vault")
    assert.deepStrictEqual(vaultLater, plan())
    assert.isUndefined(otherType)
  })
})
