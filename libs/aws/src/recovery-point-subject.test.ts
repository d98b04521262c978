import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { CreateTableCommand, DynamoDBClient, ListTagsOfResourceCommand, ResourceNotFoundException, TagResourceCommand } from "@aws-sdk/client-dynamodb"
import { CreateTagsCommand, CreateVolumeCommand, DescribeTagsCommand, EC2Client, RunInstancesCommand } from "@aws-sdk/client-ec2"
import { CreateDBInstanceCommand, DBInstanceNotFoundFault, ListTagsForResourceCommand, RDSClient } from "@aws-sdk/client-rds"
import { mockClient } from "aws-sdk-client-mock"
import { Effect, Layer } from "effect"
import { EMULATOR_ACCOUNT, EMULATOR_REGION, type Emulator, emulatorAwsConfig, emulatorClients, startEmulator } from "@backup-actions/local"
import { awsCall } from "./call"
import { AwsConfig } from "./clients"
import { DynamoDb } from "./clients/dynamodb"
import { Ec2 } from "./clients/ec2"
import { Rds } from "./clients/rds"
import { ProtectedResources, readResourceTags, recoveryPointSubject, type RecoveryPointEvent, type TagReaders } from "./recovery-point-subject"

const REGION = "us-east-1"
const ACCOUNT = "123456789012"

/** Mocked clients of one region, and their mocks. */
const mockedReaders = (region = REGION) => {
  const readers: TagReaders = { ec2: new EC2Client({ region }), rds: new RDSClient({ region }), dynamodb: new DynamoDBClient({ region }) }
  return { readers, ec2: mockClient(readers.ec2), rds: mockClient(readers.rds), dynamodb: mockClient(readers.dynamodb) }
}

const recoveryPointEvent = (resourceType: string, resourceArn: string, account: string | undefined = ACCOUNT): RecoveryPointEvent => ({
  account,
  detail: { resourceType, resourceArn, backupVaultName: "Default" }
})

describe("reading a protected resource's tags", () => {
  it.effect("asks EC2 DescribeTags for an EBS volume's tags by its id, every page", () =>
    Effect.gen(function* () {
      // Prepare
      const { readers, ec2 } = mockedReaders()
      ec2
        .on(DescribeTagsCommand)
        .resolvesOnce({ Tags: [{ Key: "env", Value: "prod", ResourceId: "vol-0123456789abcdef0" }], NextToken: "page-2" })
        .resolvesOnce({ Tags: [{ Key: "team", Value: "storage", ResourceId: "vol-0123456789abcdef0" }] })
      // Act
      const tags = yield* readResourceTags(readers, `arn:aws:ec2:${REGION}:${ACCOUNT}:volume/vol-0123456789abcdef0`)
      // Assess
      assert.deepStrictEqual(tags, { env: "prod", team: "storage" })
      assert.deepStrictEqual(
        ec2.commandCalls(DescribeTagsCommand).map((call) => call.args[0].input),
        [
          { Filters: [{ Name: "resource-id", Values: ["vol-0123456789abcdef0"] }], NextToken: undefined },
          { Filters: [{ Name: "resource-id", Values: ["vol-0123456789abcdef0"] }], NextToken: "page-2" }
        ]
      )
    })
  )

  it.effect("asks EC2 DescribeTags for an EC2 instance's tags by its id", () =>
    Effect.gen(function* () {
      // Prepare
      const { readers, ec2 } = mockedReaders()
      ec2.on(DescribeTagsCommand).resolves({ Tags: [{ Key: "role", Value: "web" }] })
      // Act
      const tags = yield* readResourceTags(readers, `arn:aws:ec2:${REGION}:${ACCOUNT}:instance/i-0123456789abcdef0`)
      // Assess
      assert.deepStrictEqual(tags, { role: "web" })
      assert.deepStrictEqual(
        ec2.commandCalls(DescribeTagsCommand).map((call) => call.args[0].input),
        [{ Filters: [{ Name: "resource-id", Values: ["i-0123456789abcdef0"] }], NextToken: undefined }]
      )
    })
  )

  it.effect("asks RDS ListTagsForResource for a DB instance's and a DB cluster's tags by their ARNs, and finds none on one that is gone", () =>
    Effect.gen(function* () {
      // Prepare
      const { readers, rds } = mockedReaders()
      const instance = `arn:aws:rds:${REGION}:${ACCOUNT}:db:orders`
      const cluster = `arn:aws:rds:${REGION}:${ACCOUNT}:cluster:ledger`
      const gone = `arn:aws:rds:${REGION}:${ACCOUNT}:db:dropped`
      rds.on(ListTagsForResourceCommand, { ResourceName: instance }).resolves({ TagList: [{ Key: "env", Value: "prod" }] })
      rds.on(ListTagsForResourceCommand, { ResourceName: cluster }).resolves({ TagList: [{ Key: "tier", Value: "gold" }] })
      rds.on(ListTagsForResourceCommand, { ResourceName: gone }).rejects(new DBInstanceNotFoundFault({ message: "DBInstance dropped not found.", $metadata: { httpStatusCode: 404 } }))
      // Act
      const tags = [yield* readResourceTags(readers, instance), yield* readResourceTags(readers, cluster), yield* readResourceTags(readers, gone)]
      // Assess
      assert.deepStrictEqual(tags, [{ env: "prod" }, { tier: "gold" }, {}])
      assert.deepStrictEqual(
        rds.commandCalls(ListTagsForResourceCommand).map((call) => call.args[0].input),
        [{ ResourceName: instance }, { ResourceName: cluster }, { ResourceName: gone }]
      )
    })
  )

  it.effect("asks DynamoDB ListTagsOfResource for a table's tags by its ARN, every page, and finds none on a table that is gone", () =>
    Effect.gen(function* () {
      // Prepare
      const { readers, dynamodb } = mockedReaders()
      const table = `arn:aws:dynamodb:${REGION}:${ACCOUNT}:table/orders`
      const gone = `arn:aws:dynamodb:${REGION}:${ACCOUNT}:table/dropped`
      dynamodb
        .on(ListTagsOfResourceCommand, { ResourceArn: table })
        .resolvesOnce({ Tags: [{ Key: "env", Value: "prod" }], NextToken: "page-2" })
        .resolvesOnce({ Tags: [{ Key: "owner", Value: "orders-team" }] })
      dynamodb.on(ListTagsOfResourceCommand, { ResourceArn: gone }).rejects(new ResourceNotFoundException({ message: "Requested resource not found", $metadata: { httpStatusCode: 400 } }))
      // Act
      const tags = [yield* readResourceTags(readers, table), yield* readResourceTags(readers, gone)]
      // Assess
      assert.deepStrictEqual(tags, [{ env: "prod", owner: "orders-team" }, {}])
      assert.deepStrictEqual(
        dynamodb.commandCalls(ListTagsOfResourceCommand).map((call) => call.args[0].input),
        [
          { ResourceArn: table, NextToken: undefined },
          { ResourceArn: table, NextToken: "page-2" },
          { ResourceArn: gone, NextToken: undefined }
        ]
      )
    })
  )

  it.effect("looks nothing up for the other resource types, and fails with the operation when a lookup is refused", () =>
    Effect.gen(function* () {
      // Prepare
      const { readers, ec2, rds, dynamodb } = mockedReaders()
      ec2.on(DescribeTagsCommand).rejects(Object.assign(new Error("You are not authorized to perform this operation."), { name: "UnauthorizedOperation", $metadata: { httpStatusCode: 403 } }))
      // Act
      const untouched = [
        yield* readResourceTags(readers, `arn:aws:elasticfilesystem:${REGION}:${ACCOUNT}:file-system/fs-0123456789abcdef0`),
        yield* readResourceTags(readers, "arn:aws:s3:::orders-bucket"),
        yield* readResourceTags(readers, `arn:aws:dynamodb:${REGION}:${ACCOUNT}:table/orders/backup/01700000000000-abcdef12`),
        yield* readResourceTags(readers, "not an arn")
      ]
      const refused = yield* Effect.flip(readResourceTags(readers, `arn:aws:ec2:${REGION}:${ACCOUNT}:volume/vol-0123456789abcdef0`))
      // Assess
      assert.deepStrictEqual(untouched, [{}, {}, {}, {}])
      assert.strictEqual(rds.calls().length + dynamodb.calls().length, 0)
      assert.deepStrictEqual([refused.operation, refused.code], ["ec2:DescribeTags", "UnauthorizedOperation"])
    })
  )
})

describe("what a recovery point is", () => {
  /** The shared service over mocked clients of the service's region. */
  const protectedResources = (readers: TagReaders) =>
    ProtectedResources.Live.pipe(
      Layer.provide(Layer.mergeAll(Layer.succeed(Ec2, readers.ec2), Layer.succeed(Rds, readers.rds), Layer.succeed(DynamoDb, readers.dynamodb), AwsConfig.layer({ region: REGION })))
    )

  it.effect("gives the event's resource type, resource and vault with the recovery point, and the tags only when asked for", () =>
    Effect.gen(function* () {
      // Prepare
      const { readers, ec2 } = mockedReaders()
      ec2.on(DescribeTagsCommand).resolves({ Tags: [{ Key: "env", Value: "prod" }] })
      const volume = `arn:aws:ec2:${REGION}:${ACCOUNT}:volume/vol-0123456789abcdef0`
      const snapshot = `arn:aws:ec2:${REGION}::snapshot/snap-0123456789abcdef0`
      const event = recoveryPointEvent("EBS", volume)
      // Act
      const [withTags, withoutTags] = yield* Effect.all([
        recoveryPointSubject(event, snapshot, { lookUpTags: true }),
        recoveryPointSubject(event, snapshot, { lookUpTags: false })
      ]).pipe(Effect.provide(protectedResources(readers)))
      // Assess
      assert.deepStrictEqual(withTags, { recoveryPointArn: snapshot, resourceType: "EBS", resourceArn: volume, vaultName: "Default", tags: { env: "prod" } })
      assert.deepStrictEqual(withoutTags, { recoveryPointArn: snapshot, resourceType: "EBS", resourceArn: volume, vaultName: "Default" })
      assert.strictEqual(ec2.commandCalls(DescribeTagsCommand).length, 1)
    })
  )

  it.effect("reads the tags of a resource of another region there, and none of a resource of another account", () =>
    Effect.gen(function* () {
      // Prepare: every RDS client answers (the one the lookup makes in the resource's region too)
      const rdsClients = mockClient(RDSClient)
      const regions: Array<string> = []
      rdsClients.on(ListTagsForResourceCommand).callsFake(async (_input: unknown, getClient: () => RDSClient) => {
        regions.push(await getClient().config.region())
        return { TagList: [{ Key: "env", Value: "prod" }] }
      })
      const readers: TagReaders = { ec2: new EC2Client({ region: REGION }), rds: new RDSClient({ region: REGION }), dynamodb: new DynamoDBClient({ region: REGION }) }
      const elsewhere = `arn:aws:rds:eu-central-1:${ACCOUNT}:db:orders`
      const otherAccount = `arn:aws:rds:${REGION}:210987654321:db:orders`
      // Act
      const [copied, foreign] = yield* Effect.all([
        recoveryPointSubject(recoveryPointEvent("RDS", elsewhere), `arn:aws:rds:${REGION}:${ACCOUNT}:snapshot:awsbackup:copy-1`, { lookUpTags: true }),
        recoveryPointSubject(recoveryPointEvent("RDS", otherAccount), `arn:aws:rds:${REGION}:${ACCOUNT}:snapshot:awsbackup:copy-2`, { lookUpTags: true })
      ]).pipe(Effect.provide(protectedResources(readers)), Effect.ensuring(Effect.sync(() => rdsClients.restore())))
      // Assess
      assert.deepStrictEqual([copied.tags, foreign.tags], [{ env: "prod" }, {}])
      assert.deepStrictEqual(regions, ["eu-central-1"])
    })
  )
})

describe("reading protected resources' tags on the emulator", () => {
  let emulator: Emulator
  beforeAll(async () => {
    emulator = await startEmulator({ name: "recovery-point-subject-test" })
  })
  afterAll(() => emulator.stop())

  const onEmulator = () => ProtectedResources.Live.pipe(Layer.provideMerge(emulatorClients(emulator.endpoint)), Layer.provideMerge(emulatorAwsConfig(emulator.endpoint)))
  const arn = (service: string, resource: string) => `arn:aws:${service}:${EMULATOR_REGION}:${EMULATOR_ACCOUNT}:${resource}`

  it.live("reads a tagged volume's, instance's, DB instance's and table's tags, and none of resources that do not exist", () =>
    Effect.gen(function* () {
      // Prepare: one tagged resource of each kind
      const ec2 = yield* Ec2
      const rds = yield* Rds
      const dynamodb = yield* DynamoDb
      const volume = yield* awsCall("ec2:CreateVolume", (abortSignal) =>
        ec2.send(new CreateVolumeCommand({ AvailabilityZone: `${EMULATOR_REGION}a`, Size: 1, TagSpecifications: [{ ResourceType: "volume", Tags: [{ Key: "env", Value: "prod" }] }] }), { abortSignal })
      )
      const instances = yield* awsCall("ec2:RunInstances", (abortSignal) => ec2.send(new RunInstancesCommand({ ImageId: "ami-12c6146b", MinCount: 1, MaxCount: 1 }), { abortSignal }))
      const instanceId = instances.Instances?.[0]?.InstanceId ?? ""
      yield* awsCall("ec2:CreateTags", (abortSignal) => ec2.send(new CreateTagsCommand({ Resources: [instanceId], Tags: [{ Key: "role", Value: "web" }] }), { abortSignal }))
      yield* awsCall("rds:CreateDBInstance", (abortSignal) =>
        rds.send(
          new CreateDBInstanceCommand({
            DBInstanceIdentifier: "tagged-orders",
            DBInstanceClass: "db.t4g.micro",
            Engine: "postgres",
            AllocatedStorage: 20,
            MasterUsername: "owner",
            MasterUserPassword: "not-a-secret-0",
            Tags: [{ Key: "tier", Value: "gold" }]
          }),
          { abortSignal }
        )
      )
      const table = yield* awsCall("dynamodb:CreateTable", (abortSignal) =>
        dynamodb.send(
          new CreateTableCommand({
            TableName: "tagged-orders",
            AttributeDefinitions: [{ AttributeName: "id", AttributeType: "S" }],
            KeySchema: [{ AttributeName: "id", KeyType: "HASH" }],
            BillingMode: "PAY_PER_REQUEST"
          }),
          { abortSignal }
        )
      )
      const tableArn = table.TableDescription?.TableArn ?? ""
      yield* awsCall("dynamodb:TagResource", (abortSignal) => dynamodb.send(new TagResourceCommand({ ResourceArn: tableArn, Tags: [{ Key: "owner", Value: "orders-team" }] }), { abortSignal }))
      const resources = yield* ProtectedResources
      // Act
      const found = yield* Effect.all([
        resources.tagsOf(arn("ec2", `volume/${volume.VolumeId ?? ""}`)),
        resources.tagsOf(arn("ec2", `instance/${instanceId}`)),
        resources.tagsOf(arn("rds", "db:tagged-orders")),
        resources.tagsOf(tableArn)
      ])
      const missing = yield* Effect.all([
        resources.tagsOf(arn("ec2", "volume/vol-0000000000000dead")),
        resources.tagsOf(arn("rds", "db:never-made")),
        resources.tagsOf(arn("dynamodb", "table/never-made"))
      ])
      // Assess
      assert.deepStrictEqual(found, [{ env: "prod" }, { role: "web" }, { tier: "gold" }, { owner: "orders-team" }])
      assert.deepStrictEqual(missing, [{}, {}, {}])
    }).pipe(Effect.provide(onEmulator()))
  )
})
