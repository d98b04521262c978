import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { RecoveryPoints, type RecoveryPointRef } from "@backup-actions/aws"
import { archivedOutcome, type ArchiveSubject } from "./outcome"

/** A RecoveryPoints that only records what it was asked to delete. */
const recordingRecoveryPoints = () => {
  const deleted: Array<RecoveryPointRef> = []
  const layer = Layer.succeed(RecoveryPoints, { delete: (ref) => Effect.sync(() => void deleted.push(ref)) })
  return { deleted, layer }
}

const subject: ArchiveSubject = {
  recoveryPointArn: "arn:aws:ec2:us-east-1::snapshot/snap-1",
  backupVaultName: "archive-and-delete",
  snapshotId: "snap-1",
  plan: { rule: "r", mode: "direct", compression: "zstd", deleteSourceAfterVerify: true },
  mode: "direct"
}

const written = (verified: boolean) => ({
  composite: "abc=-2",
  stored: verified ? "abc=-2" : "xyz=-2",
  verified,
  size: 100,
  inputBytes: 1_000,
  parts: 2,
  resumedFromPart: 0,
  manifestFragments: [],
  format: "raw" as const,
  bucket: "bucket",
  key: "archives/ebs/snap-1/direct/disk.img.zst",
  manifestKey: "archives/ebs/snap-1/direct/manifest.ndjson"
})

describe("the outcome of a written archive", () => {
  it.effect("deletes the recovery point when the policy asks and the stored checksum matches", () =>
    Effect.gen(function* () {
      const points = recordingRecoveryPoints()
      const result = yield* archivedOutcome(subject, written(true), 0).pipe(Effect.provide(points.layer))
      assert.strictEqual(result._tag, "Succeeded")
      assert.isTrue(result.outcome.sourceDeleted)
      assert.deepStrictEqual(points.deleted, [{ recoveryPointArn: subject.recoveryPointArn, backupVaultName: "archive-and-delete", snapshotId: "snap-1" }])
    })
  )

  it.effect("keeps the recovery point and fails the step when the stored checksum differs", () =>
    Effect.gen(function* () {
      const points = recordingRecoveryPoints()
      const result = yield* archivedOutcome(subject, written(false), 0).pipe(Effect.provide(points.layer))
      assert.strictEqual(result._tag, "Failed")
      assert.isFalse(result.outcome.sourceDeleted)
      assert.strictEqual(result.outcome.status, "failed")
      assert.deepStrictEqual(points.deleted, [])
    })
  )

  it.effect("keeps a verified recovery point when the policy does not ask for deletion", () =>
    Effect.gen(function* () {
      const points = recordingRecoveryPoints()
      const keep = { ...subject, plan: { ...subject.plan, deleteSourceAfterVerify: false } }
      const result = yield* archivedOutcome(keep, written(true), 0).pipe(Effect.provide(points.layer))
      assert.strictEqual(result._tag, "Succeeded")
      assert.deepStrictEqual(points.deleted, [])
    })
  )
})
