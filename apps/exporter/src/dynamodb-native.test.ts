import { assert, describe, it } from "@effect/vitest"
import { DescribeExportCommand, DynamoDBClient, ExportTableToPointInTimeCommand, ListExportsCommand } from "@aws-sdk/client-dynamodb"
import { mockClient } from "aws-sdk-client-mock"
import { Effect, Fiber, Layer, TestClock } from "effect"
import { DynamoDb } from "@backup-actions/aws"
import { ServiceSettings } from "@backup-actions/config"
import { clientTokenFor, exportDynamoDbNative } from "./dynamodb-native"
import { subjectFor } from "./test-subjects"

// The emulator has no ExportTableToPointInTime: the exact requests are checked against a mocked client.
const BACKUP = "arn:aws:dynamodb:us-east-1:123456789012:table/orders/backup/01700000000000-abcdef12"
const EXPORT = "arn:aws:dynamodb:us-east-1:123456789012:table/orders/export/01700000000001-0000aaaa"

const setup = () => {
  const client = new DynamoDBClient({ region: "us-east-1" })
  const mock = mockClient(client)
  mock.on(ListExportsCommand).resolves({ ExportSummaries: [] })
  mock.on(ExportTableToPointInTimeCommand).resolves({ ExportDescription: { ExportArn: EXPORT, ExportStatus: "IN_PROGRESS" } })
  const layer = Layer.mergeAll(
    Layer.succeed(DynamoDb, client),
    ServiceSettings.layer({ busName: "bus", artifactBucket: "artifacts", ledgerTable: "ledger", queueUrl: "q", deadLetterQueueUrl: "dlq", workDir: "/tmp" })
  )
  return { mock, layer }
}

const subject = (format: "DYNAMODB_JSON" | "ION", kmsKeyId?: string) =>
  subjectFor({
    recoveryPointArn: BACKUP,
    resourceType: "DynamoDB",
    creationDate: "2026-11-20T03:00:00.000Z",
    attempt: 2,
    action: { mode: "native", format, prefix: "long-term", ...(kmsKeyId === undefined ? {} : { kmsKeyId }) }
  })

describe("the DynamoDB native export", () => {
  it.effect("exports the source table at the recovery point's time with a deterministic client token, then waits for it", () =>
    Effect.gen(function* () {
      // Prepare
      const { mock, layer } = setup()
      mock
        .on(DescribeExportCommand)
        .resolvesOnce({ ExportDescription: { ExportArn: EXPORT, ExportStatus: "IN_PROGRESS" } })
        .resolves({ ExportDescription: { ExportArn: EXPORT, ExportStatus: "COMPLETED", ItemCount: 42, BilledSizeBytes: 4096, ExportFormat: "ION", ExportManifest: "long-term/dynamodb/orders/01700000000000-abcdef12/native/AWSDynamoDB/x/manifest-summary.json" } })
      // Act
      const fiber = yield* Effect.fork(exportDynamoDbNative(subject("ION", "alias/exports")).pipe(Effect.provide(layer)))
      yield* TestClock.adjust("1 hour")
      const result = yield* Fiber.join(fiber)
      // Assess
      assert.deepStrictEqual(mock.commandCalls(ExportTableToPointInTimeCommand).map((call) => call.args[0].input), [
        {
          TableArn: "arn:aws:dynamodb:us-east-1:123456789012:table/orders",
          ExportTime: new Date("2026-11-20T03:00:00.000Z"),
          ClientToken: clientTokenFor(BACKUP, 2),
          S3Bucket: "artifacts",
          S3Prefix: "long-term/dynamodb/orders/01700000000000-abcdef12/native",
          ExportFormat: "ION",
          ExportType: "FULL_EXPORT",
          S3SseAlgorithm: "KMS",
          S3SseKmsKeyId: "alias/exports"
        }
      ])
      assert.strictEqual(mock.commandCalls(DescribeExportCommand).length, 2)
      assert.strictEqual(result._tag, "Succeeded")
      assert.strictEqual(result.outcome.format, "ION")
      assert.strictEqual(result.outcome.itemCount, 42)
      assert.strictEqual(result.outcome.exportId, EXPORT)
      assert.isFalse(result.outcome.sourceDeleted)
    })
  )

  it.effect("carries on an export an earlier attempt started instead of starting another", () =>
    Effect.gen(function* () {
      // Prepare
      const { mock, layer } = setup()
      mock.on(ListExportsCommand).resolves({ ExportSummaries: [{ ExportArn: EXPORT, ExportStatus: "IN_PROGRESS" }] })
      mock.on(DescribeExportCommand).resolves({
        ExportDescription: { ExportArn: EXPORT, ExportStatus: "COMPLETED", S3Bucket: "artifacts", S3Prefix: "long-term/dynamodb/orders/01700000000000-abcdef12/native" }
      })
      // Act
      const result = yield* exportDynamoDbNative(subject("DYNAMODB_JSON")).pipe(Effect.provide(layer))
      // Assess
      assert.strictEqual(mock.commandCalls(ExportTableToPointInTimeCommand).length, 0)
      assert.strictEqual(result.outcome.exportId, EXPORT)
    })
  )

  it.effect("ends with DynamoDB's failure code and message when the export fails", () =>
    Effect.gen(function* () {
      // Prepare
      const { mock, layer } = setup()
      mock.on(DescribeExportCommand).resolves({ ExportDescription: { ExportArn: EXPORT, ExportStatus: "FAILED", FailureCode: "PointInTimeRecoveryUnavailable", FailureMessage: "PITR is off" } })
      // Act
      const error = yield* Effect.flip(exportDynamoDbNative(subject("DYNAMODB_JSON")).pipe(Effect.provide(layer)))
      // Assess
      assert.strictEqual(error._tag, "NativeExportFailed")
      if (error._tag === "NativeExportFailed") {
        assert.strictEqual(error.exportId, EXPORT)
        assert.strictEqual(error.cause, "PointInTimeRecoveryUnavailable: PITR is off")
      }
    })
  )

  it.effect("refuses an event without a creation date rather than exporting the table as of now", () =>
    Effect.gen(function* () {
      // Prepare
      const { mock, layer } = setup()
      const undated = { ...subject("DYNAMODB_JSON"), creationDate: undefined }
      // Act
      const error = yield* Effect.flip(exportDynamoDbNative(undated).pipe(Effect.provide(layer)))
      // Assess
      assert.strictEqual(error._tag, "NotExportable")
      assert.strictEqual(mock.commandCalls(ExportTableToPointInTimeCommand).length, 0)
    })
  )
})
