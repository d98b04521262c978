import { assert, describe, it } from "@effect/vitest"
import { DescribeKeyCommand, KMSClient } from "@aws-sdk/client-kms"
import { DescribeExportTasksCommand, RDSClient, StartExportTaskCommand, type ExportTask } from "@aws-sdk/client-rds"
import { mockClient } from "aws-sdk-client-mock"
import { Effect, Fiber, Layer, TestClock } from "effect"
import { Kms, Rds } from "@backup-actions/aws"
import { ServiceSettings } from "@backup-actions/config"
import { MAX_EXPORT_ID_LENGTH, exportRdsSnapshot, exportTaskIdentifier } from "./rds-export"
import { subjectFor } from "./test-subjects"

const SNAPSHOT = "arn:aws:rds:us-east-1:123456789012:snapshot:awsbackup:job-0123456789abcdef"
const ROLE = "arn:aws:iam::123456789012:role/rds-s3-export"

const running = (count: number): Array<ExportTask> =>
  Array.from({ length: count }, (_, index) => ({ ExportTaskIdentifier: `other-${index}`, SourceArn: `arn:aws:rds:us-east-1:123456789012:snapshot:other-${index}`, Status: "IN_PROGRESS" }))

/** An RDS whose account runs `busy` exports until the clock reaches `freeAt`, and whose export task ends as given. */
const setup = (options: { readonly busy: number; readonly freeAtMs: number; readonly ending: ExportTask }) => {
  const rds = new RDSClient({ region: "us-east-1" })
  const kms = new KMSClient({ region: "us-east-1" })
  const rdsMock = mockClient(rds)
  const kmsMock = mockClient(kms)
  kmsMock.on(DescribeKeyCommand).resolves({ KeyMetadata: { KeyId: "k", KeyState: "Enabled" } })
  let now = 0
  rdsMock.on(DescribeExportTasksCommand).callsFake(async (input: { ExportTaskIdentifier?: string; SourceArn?: string }) => {
    if (input.ExportTaskIdentifier !== undefined) return { ExportTasks: [{ ExportTaskIdentifier: input.ExportTaskIdentifier, SourceArn: SNAPSHOT, ...options.ending }] }
    if (input.SourceArn !== undefined) return { ExportTasks: [] }
    return { ExportTasks: running(now >= options.freeAtMs ? options.busy - 1 : options.busy) }
  })
  rdsMock.on(StartExportTaskCommand).resolves({ Status: "STARTING" })
  const layer = Layer.mergeAll(
    Layer.succeed(Rds, rds),
    Layer.succeed(Kms, kms),
    ServiceSettings.layer({ busName: "bus", artifactBucket: "artifacts", ledgerTable: "ledger", queueUrl: "q", deadLetterQueueUrl: "dlq", workDir: "/tmp" })
  )
  return { rdsMock, layer, advanceTo: (ms: number) => (now = ms) }
}

const subject = subjectFor({
  recoveryPointArn: SNAPSHOT,
  resourceType: "RDS",
  attempt: 3,
  action: { mode: "native", kmsKeyId: "arn:aws:kms:us-east-1:123456789012:key/k", iamRoleArn: ROLE, tables: ["shop.public.orders"] }
})

describe("the RDS snapshot export", () => {
  it.effect("waits while five exports run in the account and starts once one finishes", () =>
    Effect.gen(function* () {
      // Prepare
      const { rdsMock, layer, advanceTo } = setup({ busy: 5, freeAtMs: 10 * 60_000, ending: { Status: "COMPLETE" } })
      // Act: the quota is full for ten minutes
      const fiber = yield* Effect.fork(exportRdsSnapshot(subject, "rds").pipe(Effect.provide(layer)))
      yield* TestClock.adjust("9 minutes")
      const startedWhileFull = rdsMock.commandCalls(StartExportTaskCommand).length
      advanceTo(10 * 60_000)
      yield* TestClock.adjust("30 minutes")
      const result = yield* Fiber.join(fiber)
      // Assess
      assert.strictEqual(startedWhileFull, 0)
      assert.deepStrictEqual(rdsMock.commandCalls(StartExportTaskCommand).map((call) => call.args[0].input), [
        {
          ExportTaskIdentifier: exportTaskIdentifier("awsbackup:job-0123456789abcdef", SNAPSHOT, 3),
          SourceArn: SNAPSHOT,
          S3BucketName: "artifacts",
          S3Prefix: "exports/rds",
          IamRoleArn: ROLE,
          KmsKeyId: "arn:aws:kms:us-east-1:123456789012:key/k",
          ExportOnly: ["shop.public.orders"]
        }
      ])
      assert.isAbove(rdsMock.commandCalls(DescribeExportTasksCommand).length, 3)
      assert.strictEqual(result.outcome.status, "exported")
    })
  )

  it.effect("ends with RDS's failure cause when the task fails, keeping the source", () =>
    Effect.gen(function* () {
      // Prepare
      const { layer } = setup({ busy: 0, freeAtMs: 0, ending: { Status: "FAILED", FailureCause: "The IAM role cannot write to the bucket" } })
      // Act
      const error = yield* Effect.flip(exportRdsSnapshot(subject, "rds").pipe(Effect.provide(layer)))
      // Assess
      assert.strictEqual(error._tag, "NativeExportFailed")
      if (error._tag === "NativeExportFailed") {
        assert.strictEqual(error.status, "FAILED")
        assert.strictEqual(error.cause, "The IAM role cannot write to the bucket")
      }
    })
  )

  it.effect("surfaces RDS's warning about skipped tables", () =>
    Effect.gen(function* () {
      // Prepare
      const { layer } = setup({ busy: 0, freeAtMs: 0, ending: { Status: "COMPLETE", WarningMessage: "Skipped tables: shop.audit", TotalExtractedDataInGB: 2 } })
      // Act
      const result = yield* exportRdsSnapshot(subject, "rds").pipe(Effect.provide(layer))
      // Assess
      assert.strictEqual(result.outcome.warning, "Skipped tables: shop.audit")
      assert.strictEqual(result.outcome.bytesStored, 2 * 1024 ** 3)
    })
  )

  it("makes identifiers RDS accepts, the same for the same attempt and different for the next", () => {
    // Act
    const long = "awsbackup:job-" + "x".repeat(200)
    const first = exportTaskIdentifier(long, SNAPSHOT, 1)
    const again = exportTaskIdentifier(long, SNAPSHOT, 1)
    const second = exportTaskIdentifier(long, SNAPSHOT, 2)
    // Assess
    assert.strictEqual(first, again)
    assert.notStrictEqual(first, second)
    for (const identifier of [first, second, exportTaskIdentifier("A--b__", SNAPSHOT, 12)]) {
      assert.isAtMost(identifier.length, MAX_EXPORT_ID_LENGTH)
      assert.match(identifier, /^[a-z](?!.*--)[a-z0-9-]*[a-z0-9]$/)
    }
  })
})
