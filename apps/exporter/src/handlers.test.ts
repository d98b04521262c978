import { assert, describe, it } from "@effect/vitest"
import { DynamoDBClient } from "@aws-sdk/client-dynamodb"
import { EC2Client } from "@aws-sdk/client-ec2"
import { KMSClient } from "@aws-sdk/client-kms"
import { RDSClient } from "@aws-sdk/client-rds"
import { S3Client } from "@aws-sdk/client-s3"
import { mockClient } from "aws-sdk-client-mock"
import { Effect, Either, Layer, Schema } from "effect"
import { DynamoDb, Ec2, Kms, Rds, S3 } from "@backup-actions/aws"
import { fixedProtectedResources, makeMemoryRecoveryPoints } from "@backup-actions/aws/testing"
import { Policy, PolicySource, ServiceSettings } from "@backup-actions/config"
import { ExportCompleted } from "@backup-actions/contracts"
import { UnprocessableEvent } from "@backup-actions/consumer"
import { makeMemoryPublisher } from "@backup-actions/consumer/testing"
import { makeMemoryLedger } from "@backup-actions/ledger/testing"
import { onRecoveryPoint } from "./service"
import { recoveryPointCompleted as recoveryPointEvent, testEnvelope } from "@backup-actions/contracts/testing"

const ACCOUNT = "123456789012"
const REGION = "us-east-1"

/**
 * Parquet for the Default vault's tables; in two other vaults, rules that list no resource type
 * (so that the policy takes them) and so reach recovery points they cannot export as asked.
 */
const policy = Schema.decodeUnknownSync(Policy)({
  rules: [
    { name: "parquet-everything", match: { vaults: ["parquet-everything"] }, export: { mode: "parquet" } },
    { name: "native-then-delete", match: { vaults: ["native-then-delete"] }, export: { mode: "native", deleteSourceAfterVerify: true } },
    { name: "tables", match: { resourceTypes: ["DynamoDB"], vaults: ["Default"] }, export: { mode: "parquet" } }
  ]
})

/**
 * The exporter's handler over an in-memory ledger, publisher and recovery points, with mocked
 * clients that answer nothing: `calls` counts what the handler asked AWS, which none of the
 * decisions here needs.
 */
const exporter = () => {
  const ledger = makeMemoryLedger()
  const publisher = makeMemoryPublisher()
  const points = makeMemoryRecoveryPoints()
  const clients = {
    dynamodb: new DynamoDBClient({ region: REGION }),
    ec2: new EC2Client({ region: REGION }),
    kms: new KMSClient({ region: REGION }),
    rds: new RDSClient({ region: REGION }),
    s3: new S3Client({ region: REGION })
  }
  const mocks = [
    mockClient(clients.dynamodb),
    mockClient(clients.ec2),
    mockClient(clients.kms),
    mockClient(clients.rds),
    mockClient(clients.s3)
  ]
  const layer = Layer.mergeAll(
    ledger.layer,
    publisher.layer,
    points.layer,
    fixedProtectedResources(),
    PolicySource.layer(policy),
    ServiceSettings.layer({ busName: "bus", artifactBucket: "artifacts", ledgerTable: "ledger", queueUrl: "exporter-queue", deadLetterQueueUrl: "exporter-dlq", workDir: "/tmp" }),
    Layer.succeed(DynamoDb, clients.dynamodb),
    Layer.succeed(Ec2, clients.ec2),
    Layer.succeed(Kms, clients.kms),
    Layer.succeed(Rds, clients.rds),
    Layer.succeed(S3, clients.s3)
  )
  return { ledger, publisher, points, layer, calls: () => mocks.reduce((total, mock) => total + mock.calls().length, 0) }
}

const recoveryPointCompleted = (id: string, resource: { readonly resourceType: string; readonly resourceArn: string; readonly vault: string }, recoveryPointArn?: string) =>
  recoveryPointEvent(testEnvelope(ACCOUNT, REGION), id, { resourceType: resource.resourceType, resourceArn: resource.resourceArn, vaultName: resource.vault }, recoveryPointArn)

const table = (vault: string) => ({ resourceType: "DynamoDB", resourceArn: `arn:aws:dynamodb:${REGION}:${ACCOUNT}:table/orders`, vault })
const tableBackup = (name: string) => `arn:aws:dynamodb:${REGION}:${ACCOUNT}:table/orders/backup/${name}`

describe("the exporter's recovery-point handler", () => {
  it.effect("rejects a recovery point event that names no recovery point when a rule may export it, and ignores a type it has no export for", () => {
    // Prepare: a table's event the policy exports and a volume's, which the exporter never exports; neither names its recovery point
    const local = exporter()
    const tableEvent = recoveryPointCompleted("rp-table-no-arn", table("Default"))
    const volume = { resourceType: "EBS", resourceArn: `arn:aws:ec2:${REGION}:${ACCOUNT}:volume/vol-0noarn0000000001`, vault: "parquet-everything" }
    return Effect.gen(function* () {
      // Act
      const rejection = yield* Effect.flip(onRecoveryPoint(tableEvent))
      const ignored = yield* Effect.either(onRecoveryPoint(recoveryPointCompleted("rp-volume-no-arn", volume)))
      // Assess: the reason the DLQ gets for the table's event; the volume's handled without a step, an event or a call
      assert.instanceOf(rejection, UnprocessableEvent)
      assert.strictEqual(rejection.reason, `"Recovery Point State Change" event rp-table-no-arn for ${tableEvent.detail.resourceArn} names no recovery point (resources[] is empty)`)
      assert.isTrue(Either.isRight(ignored))
      assert.deepStrictEqual([...local.ledger.items.keys()], [])
      assert.deepStrictEqual(local.publisher.published, [])
      assert.strictEqual(local.calls(), 0)
    }).pipe(Effect.provide(local.layer))
  })

  it.effect("records and announces a refusal, with its reason, of an export mode a type does not have and of a native export whose rule asks to delete the source", () => {
    // Prepare: a DB snapshot under a Parquet rule, and a table's backup under a native rule that asks to delete it
    const local = exporter()
    const dbSnapshot = `arn:aws:rds:${REGION}:${ACCOUNT}:snapshot:awsbackup:job-ledger`
    const database = { resourceType: "RDS", resourceArn: `arn:aws:rds:${REGION}:${ACCOUNT}:db:ledger`, vault: "parquet-everything" }
    const backup = tableBackup("01-native")
    return Effect.gen(function* () {
      // Act
      yield* onRecoveryPoint(recoveryPointCompleted("rp-db-parquet", database, dbSnapshot))
      yield* onRecoveryPoint(recoveryPointCompleted("rp-table-native-delete", table("native-then-delete"), backup))
      // Assess: a failed step each, announced with the same reason and the protected resource; nothing asked of AWS, nothing deleted
      const parquetReason = `rule "parquet-everything" asks for a parquet export, which RDS recovery points do not have here`
      const nativeReason = `rule "native-then-delete" asks to delete the source after a native dynamodb export, which the exporter never verifies; nothing was exported`
      assert.deepStrictEqual(
        [...local.ledger.items.values()].map((record) => [record.recoveryPointArn, record.action, record.status, record.reason]),
        [
          [dbSnapshot, "export:parquet", "failed", parquetReason],
          [backup, "export:native", "failed", nativeReason]
        ]
      )
      const announced = yield* Effect.forEach(local.publisher.published, (event) => ExportCompleted.decodeDetail(event.detail))
      assert.deepStrictEqual(
        announced.map((detail) => [detail.correlationId, detail.resourceArn, detail.kind, detail.mode, detail.status, detail.sourceDeleted, detail.reason]),
        [
          [dbSnapshot, database.resourceArn, "rds", "parquet", "failed", false, parquetReason],
          [backup, table("native-then-delete").resourceArn, "dynamodb", "native", "failed", false, nativeReason]
        ]
      )
      assert.deepStrictEqual(local.points.deletions, [])
      assert.strictEqual(local.calls(), 0)
    }).pipe(Effect.provide(local.layer))
  })

  it.effect("does nothing for a recovery point whose export already finished, as when its event is delivered again", () => {
    // Prepare: the table backup's export step finished and announced
    const local = exporter()
    const backup = tableBackup("02-done")
    const step = { recoveryPointArn: backup, action: "export:parquet" }
    return Effect.gen(function* () {
      const { claim } = yield* local.ledger.ledger.claim(step, { leaseMs: 60_000, maxAttempts: 3 })
      yield* local.ledger.ledger.finish(claim, { status: "succeeded", outcome: { status: "exported" } })
      const before = yield* local.ledger.ledger.get(step)
      // Act
      yield* onRecoveryPoint(recoveryPointCompleted("rp-table-again", table("Default"), backup))
      // Assess: the step as it was, no event, no call, no deletion
      assert.strictEqual(before?.status, "succeeded")
      assert.deepStrictEqual(yield* local.ledger.ledger.get(step), before)
      assert.deepStrictEqual(local.publisher.published, [])
      assert.deepStrictEqual(local.points.deletions, [])
      assert.strictEqual(local.calls(), 0)
    }).pipe(Effect.provide(local.layer))
  })
})
