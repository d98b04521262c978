import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { BackupClient, ListRecoveryPointsByBackupVaultCommand } from "@aws-sdk/client-backup"
import { CreateBackupCommand, CreateTableCommand, PutItemCommand, TagResourceCommand } from "@aws-sdk/client-dynamodb"
import { CreateImageCommand, CreateTagsCommand, DescribeImagesCommand, RunInstancesCommand } from "@aws-sdk/client-ec2"
import { CreateAliasCommand, CreateKeyCommand } from "@aws-sdk/client-kms"
import { ListObjectsV2Command } from "@aws-sdk/client-s3"
import { mockClient } from "aws-sdk-client-mock"
import { Effect, Schema } from "effect"
import { Backup, DynamoDb, Ec2, Kms, S3, awsCall } from "@backup-actions/aws"
import { AmiSweepDue, ExportCompleted, RecoveryPointStateChange, type DetailOf, type EventOf } from "@backup-actions/contracts"
import { Policy } from "@backup-actions/config"
import { EMULATOR_ACCOUNT, EMULATOR_REGION, type ServiceHarness, type Tap, ledgerSteps, snapshotOfTaggedInstance, startServiceHarness } from "@backup-actions/local"
import { BACKUP_SOURCE_TAG } from "./ami-image"
import { amiArn } from "./arns"
import { ExporterServices, onAmiSweepDue, onRecoveryPoint } from "./service"

/** The exporter's ledger, bucket and bus on the emulator, with a tap on the bus for every Export Completed. */
let harness: ServiceHarness
let published: Tap

const EXPORT_KEY_ALIAS = "alias/exporter-service-test"

/** Exports chosen by the protected resource's tags (tables, DB instances), and AMIs swept only from one vault. */
const policy = Schema.decodeUnknownSync(Policy)({
  rules: [
    { name: "prod-tables", match: { resourceTypes: ["DynamoDB"], tags: { env: "prod" } }, export: { mode: "parquet", scanSegments: 2 } },
    {
      name: "prod-databases",
      match: { resourceTypes: ["RDS"], tags: { env: "prod" } },
      export: { mode: "native", kmsKeyId: `arn:aws:kms:${EMULATOR_REGION}:${EMULATOR_ACCOUNT}:${EXPORT_KEY_ALIAS}`, iamRoleArn: `arn:aws:iam::${EMULATOR_ACCOUNT}:role/rds-export` }
    },
    { name: "golden-amis", match: { resourceTypes: ["EC2"], vaults: ["golden-amis"] }, export: { mode: "direct", sweepSelects: "matching" } }
  ]
})

beforeAll(async () => {
  harness = await startServiceHarness({ prefix: "exporter-service-test", service: "exporter" })
  published = await harness.tapBus(ExportCompleted.pattern(), "exports")
})
afterAll(() => harness.stop())

const exporterLayer = () => harness.layer(ExporterServices, policy)

const envelope = { version: "0", account: EMULATOR_ACCOUNT, time: "2026-08-01T00:00:00Z", region: EMULATOR_REGION } as const

/** A COMPLETED recovery point event, as AWS Backup sends it. */
const recoveryPointCompleted = (id: string, resourceType: string, resourceArn: string, recoveryPointArn: string): EventOf<typeof RecoveryPointStateChange> => ({
  ...envelope,
  id,
  source: RecoveryPointStateChange.source,
  "detail-type": RecoveryPointStateChange.detailType,
  resources: [recoveryPointArn],
  detail: { status: "COMPLETED", resourceType, resourceArn, backupVaultName: "Default", creationDate: new Date().toISOString() }
})

/** A table with a few items, tagged, and a backup of it: its ARN and the backup's. */
const backedUpTable = (name: string, tags: Record<string, string>) =>
  Effect.gen(function* () {
    const dynamodb = yield* DynamoDb
    const created = yield* awsCall("dynamodb:CreateTable", (abortSignal) =>
      dynamodb.send(
        new CreateTableCommand({
          TableName: name,
          AttributeDefinitions: [{ AttributeName: "id", AttributeType: "S" }],
          KeySchema: [{ AttributeName: "id", KeyType: "HASH" }],
          BillingMode: "PAY_PER_REQUEST"
        }),
        { abortSignal }
      )
    )
    const tableArn = created.TableDescription?.TableArn ?? ""
    yield* awsCall("dynamodb:TagResource", (abortSignal) =>
      dynamodb.send(new TagResourceCommand({ ResourceArn: tableArn, Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })) }), { abortSignal })
    )
    yield* Effect.forEach(
      ["a", "b", "c"],
      (id) => awsCall("dynamodb:PutItem", (abortSignal) => dynamodb.send(new PutItemCommand({ TableName: name, Item: { id: { S: id }, total: { N: "10" } } }), { abortSignal })),
      { discard: true }
    )
    const backup = yield* awsCall("dynamodb:CreateBackup", (abortSignal) => dynamodb.send(new CreateBackupCommand({ TableName: name, BackupName: `${name}-backup` }), { abortSignal }))
    return { tableArn, backupArn: backup.BackupDetails?.BackupArn ?? "" }
  })

/** The key RDS exports are encrypted with, under the alias the policy names. */
const exportKey = Effect.gen(function* () {
  const kms = yield* Kms
  const key = yield* awsCall("kms:CreateKey", (abortSignal) => kms.send(new CreateKeyCommand({ Description: "exporter service test: RDS exports" }), { abortSignal }))
  yield* awsCall("kms:CreateAlias", (abortSignal) => kms.send(new CreateAliasCommand({ AliasName: EXPORT_KEY_ALIAS, TargetKeyId: key.KeyMetadata?.KeyId }), { abortSignal }))
})

/** An AMI made with CreateImage from an instance, as AWS Backup makes one. */
/** An AMI as AWS Backup makes one: tagged with the instance it was taken of. */
const image = (name: string) =>
  Effect.gen(function* () {
    const ec2 = yield* Ec2
    const base = yield* awsCall("ec2:DescribeImages", (abortSignal) => ec2.send(new DescribeImagesCommand({ Owners: ["amazon"] }), { abortSignal }))
    const instances = yield* awsCall("ec2:RunInstances", (abortSignal) =>
      ec2.send(new RunInstancesCommand({ ImageId: base.Images?.[0]?.ImageId, MinCount: 1, MaxCount: 1, InstanceType: "t3.micro" }), { abortSignal })
    )
    const instanceId = instances.Instances?.[0]?.InstanceId ?? ""
    const created = yield* awsCall("ec2:CreateImage", (abortSignal) => ec2.send(new CreateImageCommand({ InstanceId: instanceId, Name: name }), { abortSignal }))
    const imageId = created.ImageId ?? ""
    yield* awsCall("ec2:CreateTags", (abortSignal) =>
      ec2.send(new CreateTagsCommand({ Resources: [imageId], Tags: [{ Key: BACKUP_SOURCE_TAG, Value: instanceId }] }), { abortSignal })
    )
    return imageId
  })

const outcomes = (bodies: ReadonlyArray<string>) =>
  bodies
    .map((body): { detail: DetailOf<typeof ExportCompleted> } => JSON.parse(body))
    .map(({ detail }) => [detail.correlationId, detail.kind, detail.mode, detail.status])
    .sort()

describe("the exporter's recovery-point handler", () => {
  it.live("exports the DynamoDB table and the RDS DB instance that carry the tag a rule asks for, and neither of their untagged peers", () =>
    Effect.gen(function* () {
      // Prepare: a tagged and an untagged table, each backed up; a tagged and an untagged DB instance, each snapshotted
      yield* exportKey
      const prodTable = yield* backedUpTable("orders-prod", { env: "prod" })
      const devTable = yield* backedUpTable("orders-dev", { env: "dev" })
      const prodDatabase = yield* snapshotOfTaggedInstance("ledger-prod", "ledger-prod-snapshot", { env: "prod" })
      const devDatabase = yield* snapshotOfTaggedInstance("ledger-dev", "ledger-dev-snapshot", { env: "dev" })
      const before = yield* ledgerSteps(harness.stack.ledgerTable)
      // Act
      yield* onRecoveryPoint(recoveryPointCompleted("table-prod", "DynamoDB", prodTable.tableArn, prodTable.backupArn))
      yield* onRecoveryPoint(recoveryPointCompleted("table-dev", "DynamoDB", devTable.tableArn, devTable.backupArn))
      yield* onRecoveryPoint(recoveryPointCompleted("db-prod", "RDS", prodDatabase.resourceArn, prodDatabase.recoveryPointArn))
      yield* onRecoveryPoint(recoveryPointCompleted("db-dev", "RDS", devDatabase.resourceArn, devDatabase.recoveryPointArn))
      // Assess: only the tagged ones have a step, and each was exported as its rule asks
      const after = yield* ledgerSteps(harness.stack.ledgerTable)
      assert.deepStrictEqual(
        after.filter((step) => !before.includes(step)),
        [`${prodTable.backupArn} export:parquet`, `${prodDatabase.recoveryPointArn} export:native`].sort()
      )
      assert.deepStrictEqual(
        outcomes(yield* published.drain(2)),
        [
          [prodTable.backupArn, "dynamodb", "parquet", "exported"],
          [prodDatabase.recoveryPointArn, "rds", "native", "exported"]
        ].sort()
      )
    }).pipe(Effect.provide(exporterLayer()))
  )
})

/** AMIs of production EC2 instances exported in direct mode, chosen by the instance's tags; nothing else. */
const instancePolicy = Schema.decodeUnknownSync(Policy)({
  rules: [{ name: "prod-instances", match: { resourceTypes: ["EC2"], tags: { env: "prod" } }, export: { mode: "direct" } }]
})

/** An EC2 instance with the given tags and an AMI made of it with CreateImage, as AWS Backup makes one: the instance's ARN and the image's. */
const imageOfTaggedInstance = (name: string, tags: Record<string, string>) =>
  Effect.gen(function* () {
    const ec2 = yield* Ec2
    const base = yield* awsCall("ec2:DescribeImages", (abortSignal) => ec2.send(new DescribeImagesCommand({ Owners: ["amazon"] }), { abortSignal }))
    const instances = yield* awsCall("ec2:RunInstances", (abortSignal) =>
      ec2.send(new RunInstancesCommand({ ImageId: base.Images?.[0]?.ImageId, MinCount: 1, MaxCount: 1, InstanceType: "t3.micro" }), { abortSignal })
    )
    const instanceId = instances.Instances?.[0]?.InstanceId ?? ""
    if (Object.keys(tags).length > 0) {
      yield* awsCall("ec2:CreateTags", (abortSignal) =>
        ec2.send(new CreateTagsCommand({ Resources: [instanceId], Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })) }), { abortSignal })
      )
    }
    const created = yield* awsCall("ec2:CreateImage", (abortSignal) => ec2.send(new CreateImageCommand({ InstanceId: instanceId, Name: name }), { abortSignal }))
    const imageId = created.ImageId ?? ""
    return { instanceArn: `arn:aws:ec2:${EMULATOR_REGION}:${EMULATOR_ACCOUNT}:instance/${instanceId}`, imageId, imageArn: amiArn("aws", EMULATOR_REGION, imageId) }
  })

describe("the exporter's AMI selection by tags", () => {
  it.live("exports in direct mode the AMI of an EC2 instance that carries the rule's tag, and not that of an untagged instance", () =>
    Effect.gen(function* () {
      // Prepare: a production instance and an untagged one, each imaged
      const prod = yield* imageOfTaggedInstance("web-prod", { env: "prod", team: "web" })
      const untagged = yield* imageOfTaggedInstance("web-untagged", {})
      const before = yield* ledgerSteps(harness.stack.ledgerTable)
      // Act
      yield* onRecoveryPoint(recoveryPointCompleted("ec2-prod", "EC2", prod.instanceArn, prod.imageArn))
      yield* onRecoveryPoint(recoveryPointCompleted("ec2-untagged", "EC2", untagged.instanceArn, untagged.imageArn))
      // Assess: only the tagged instance's AMI has a step
      const after = yield* ledgerSteps(harness.stack.ledgerTable)
      assert.deepStrictEqual(
        after.filter((step) => !before.includes(step)),
        [`${prod.imageArn} export:direct`]
      )
      // Assess: its export announced, with the image's metadata in the bucket and its snapshots left to the streamer
      const announced = (yield* published.drain(1)).map((body): { detail: DetailOf<typeof ExportCompleted> } => JSON.parse(body))
      assert.deepStrictEqual(
        announced.map(({ detail }) => [detail.correlationId, detail.kind, detail.mode, detail.status, detail.imageId, detail.location?.key, detail.format]),
        [[prod.imageArn, "ami", "direct", "exported", prod.imageId, `archives/ami/${prod.imageId}/image.json`, "ebs-direct"]]
      )
      assert.isAbove(announced[0]?.detail.snapshots?.length ?? 0, 0)
      const s3 = yield* S3
      const stored = yield* awsCall("s3:ListObjectsV2", (abortSignal) =>
        s3.send(new ListObjectsV2Command({ Bucket: harness.stack.artifactBucket, Prefix: "archives/ami/" }), { abortSignal })
      )
      assert.deepStrictEqual(
        (stored.Contents ?? []).map((object) => object.Key).filter((key) => key?.includes(prod.imageId) === true || key?.includes(untagged.imageId) === true),
        [`archives/ami/${prod.imageId}/image.json`]
      )
    }).pipe(Effect.provide(harness.layer(ExporterServices, instancePolicy)))
  )
})

describe("the exporter's AMI sweep", () => {
  it.live("exports, for a rule limited to a vault, only the AMI that AWS Backup keeps in that vault", () =>
    Effect.gen(function* () {
      // Prepare: two AMIs of the account, AWS Backup (mocked: the emulator has no recovery points) keeping one in the rule's vault
      const inVault = yield* image("golden-1")
      const elsewhere = yield* image("golden-2")
      const backup = new BackupClient({ region: EMULATOR_REGION })
      mockClient(backup)
        .on(ListRecoveryPointsByBackupVaultCommand, { BackupVaultName: "golden-amis" })
        .resolves({ RecoveryPoints: [{ RecoveryPointArn: amiArn("aws", EMULATOR_REGION, inVault), ResourceType: "EC2", BackupVaultName: "golden-amis" }] })
      const sweepDue: EventOf<typeof AmiSweepDue> = {
        ...envelope,
        id: "ami-sweep",
        source: AmiSweepDue.source,
        "detail-type": AmiSweepDue.detailType,
        resources: [],
        detail: {}
      }
      const before = yield* ledgerSteps(harness.stack.ledgerTable)
      // Act
      yield* onAmiSweepDue(sweepDue).pipe(Effect.provideService(Backup, backup))
      // Assess
      const after = yield* ledgerSteps(harness.stack.ledgerTable)
      assert.deepStrictEqual(
        after.filter((step) => !before.includes(step)),
        [`${amiArn("aws", EMULATOR_REGION, inVault)} export:direct`]
      )
      assert.notInclude(after.join("\n"), elsewhere)
      assert.deepStrictEqual(outcomes(yield* published.drain(1)), [[amiArn("aws", EMULATOR_REGION, inVault), "ami", "direct", "exported"]])
    }).pipe(Effect.provide(exporterLayer()))
  )
})
