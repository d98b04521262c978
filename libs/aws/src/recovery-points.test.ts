import { assert, describe, it } from "@effect/vitest"
import {
  BackupClient,
  DeleteRecoveryPointCommand,
  DescribeRecoveryPointCommand,
  InvalidRequestException,
  ResourceNotFoundException,
  type RecoveryPointStatus
} from "@aws-sdk/client-backup"
import { mockClient } from "aws-sdk-client-mock"
import { Effect, Layer } from "effect"
import { Backup } from "./clients/backup"
import { RecoveryPoints, type RecoveryPointRef } from "./recovery-points"

const snapshotPoint: RecoveryPointRef = {
  recoveryPointArn: "arn:aws:ec2:us-east-1::snapshot/snap-0123456789abcdef0",
  backupVaultName: "archive-direct",
  snapshotId: "snap-0123456789abcdef0"
}
const target = { BackupVaultName: "archive-direct", RecoveryPointArn: snapshotPoint.recoveryPointArn }

const notFound = () => new ResourceNotFoundException({ message: `${snapshotPoint.recoveryPointArn} not found`, $metadata: { httpStatusCode: 400 } })

/** AWS Backup against a mocked client: the emulator has no recovery points. */
const throughBackup = () => {
  const client = new BackupClient({ region: "us-east-1" })
  const mock = mockClient(client)
  const deletion = Effect.flatMap(RecoveryPoints, (points) => points.delete(snapshotPoint)).pipe(
    Effect.provide(RecoveryPoints.Live.pipe(Layer.provide(Layer.succeed(Backup, client))))
  )
  return { mock, deletion }
}

describe("deleting a recovery point through AWS Backup", () => {
  it.effect("sends DeleteRecoveryPoint with the vault and the recovery-point ARN, and is deleted when a describe no longer finds it", () =>
    Effect.gen(function* () {
      // Prepare
      const { mock, deletion } = throughBackup()
      mock.on(DeleteRecoveryPointCommand).resolves({})
      mock.on(DescribeRecoveryPointCommand).rejects(notFound())
      // Act
      const seen = yield* deletion
      // Assess
      assert.strictEqual(seen, "deleted")
      assert.deepStrictEqual(
        mock.commandCalls(DeleteRecoveryPointCommand).map((call) => call.args[0].input),
        [target]
      )
      assert.deepStrictEqual(
        mock.commandCalls(DescribeRecoveryPointCommand).map((call) => call.args[0].input),
        [target]
      )
    })
  )

  const lostReplies = [
    { name: "a 500", error: () => Object.assign(new Error("We encountered an internal error. Please try again."), { name: "InternalFailure", $metadata: { httpStatusCode: 500 } }) },
    { name: "a request timeout", error: () => Object.assign(new Error("Connection timed out after 30000 ms"), { name: "TimeoutError" }) }
  ]
  for (const lost of lostReplies) {
    it.live(`takes a lost reply (${lost.name} after AWS deleted it, then not found on the retry) for a deletion, when a describe finds nothing`, () =>
      Effect.gen(function* () {
        // Prepare
        const { mock, deletion } = throughBackup()
        mock.on(DeleteRecoveryPointCommand).rejectsOnce(lost.error()).rejectsOnce(notFound())
        mock.on(DescribeRecoveryPointCommand).rejects(notFound())
        // Act
        const seen = yield* deletion
        // Assess
        assert.strictEqual(seen, "deleted")
        assert.deepStrictEqual(
          mock.commandCalls(DeleteRecoveryPointCommand).map((call) => call.args[0].input),
          [target, target]
        )
        assert.deepStrictEqual(
          mock.commandCalls(DescribeRecoveryPointCommand).map((call) => call.args[0].input),
          [target]
        )
      })
    )
  }

  const statuses: ReadonlyArray<{ readonly status: RecoveryPointStatus; readonly seen: string }> = [
    { status: "DELETING", seen: "deleting" },
    { status: "EXPIRED", seen: "expired" },
    { status: "COMPLETED", seen: "still-there" },
    { status: "PARTIAL", seen: "still-there" }
  ]
  for (const { status, seen } of statuses) {
    it.effect(`says "${seen}" when the delete is accepted and a describe finds the recovery point ${status}`, () =>
      Effect.gen(function* () {
        // Prepare
        const { mock, deletion } = throughBackup()
        mock.on(DeleteRecoveryPointCommand).resolves({})
        mock.on(DescribeRecoveryPointCommand).resolves({ RecoveryPointArn: target.RecoveryPointArn, BackupVaultName: target.BackupVaultName, Status: status })
        // Act
        const result = yield* deletion
        // Assess
        assert.strictEqual(result, seen)
        assert.deepStrictEqual(
          mock.commandCalls(DescribeRecoveryPointCommand).map((call) => call.args[0].input),
          [target]
        )
      })
    )
  }

  it.effect("takes an invalid-request answer for a deletion under way when a describe finds the recovery point DELETING", () =>
    Effect.gen(function* () {
      // Prepare
      const { mock, deletion } = throughBackup()
      mock.on(DeleteRecoveryPointCommand).rejects(new InvalidRequestException({ message: "Recovery point is being deleted", $metadata: { httpStatusCode: 400 } }))
      mock.on(DescribeRecoveryPointCommand).resolves({ Status: "DELETING" })
      // Act
      const seen = yield* deletion
      // Assess
      assert.strictEqual(seen, "deleting")
    })
  )

  it.effect("keeps an invalid-request answer as the error when a describe finds the recovery point as it was", () =>
    Effect.gen(function* () {
      // Prepare
      const { mock, deletion } = throughBackup()
      mock.on(DeleteRecoveryPointCommand).rejects(new InvalidRequestException({ message: "the recovery point is retained by a legal hold", $metadata: { httpStatusCode: 400 } }))
      mock.on(DescribeRecoveryPointCommand).resolves({ Status: "COMPLETED" })
      // Act
      const error = yield* Effect.flip(deletion)
      // Assess
      assert.strictEqual(error.code, "InvalidRequestException")
      assert.include(error.message, "legal hold")
    })
  )

  it.effect("fails with the describe's error rather than guess when the describe is refused", () =>
    Effect.gen(function* () {
      // Prepare
      const { mock, deletion } = throughBackup()
      mock.on(DeleteRecoveryPointCommand).resolves({})
      mock
        .on(DescribeRecoveryPointCommand)
        .rejects(Object.assign(new Error("not authorized to perform backup:DescribeRecoveryPoint"), { name: "AccessDeniedException", $metadata: { httpStatusCode: 403 } }))
      // Act
      const error = yield* Effect.flip(deletion)
      // Assess
      assert.strictEqual(error.operation, "backup:DescribeRecoveryPoint")
      assert.strictEqual(error.code, "AccessDeniedException")
    })
  )
})
