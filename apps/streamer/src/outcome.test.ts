import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { makeMemoryRecoveryPoints } from "@backup-actions/aws/testing"
import { ServiceSettings } from "@backup-actions/config"
import { makeMemoryLedger } from "@backup-actions/ledger/testing"
import type { ContentVerdict } from "./content-verification"
import { archiveStep, archivedOutcome, type ArchiveSubject } from "./outcome"

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
  manifestKey: "archives/ebs/snap-1/direct/manifest.ndjson",
  etag: '"etag"'
})

const CONTENT: ContentVerdict = { verified: "content" }
const UPLOAD_ONLY: ContentVerdict = { verified: "upload", reason: "the archive read back differs from its source: block 3 (offset 1572864): SHA-256 differs" }
const NONE: ContentVerdict = { verified: "none", reason: "S3's checksum of the upload differs from the parts sent" }

const settings = ServiceSettings.layer({ busName: "bus", artifactBucket: "bucket", ledgerTable: "ledger", queueUrl: "q", deadLetterQueueUrl: "d", workDir: "/tmp" })

/** The outcome of an archive and then, as the step runtime does after recording it, the deletion the policy asks for. */
const archiveThenDelete = (archive: ArchiveSubject, verdict: ContentVerdict) =>
  Effect.gen(function* () {
    const result = yield* archivedOutcome(archive, written(verdict.verified !== "none"), verdict, 0)
    const step = archiveStep(archive, { recoveryPointArn: archive.recoveryPointArn, action: "archive:direct" })
    const announced = result._tag === "Succeeded" ? yield* step.afterSuccess(result.outcome) : result.outcome
    return { result, announced }
  })

describe("the outcome of a written archive", () => {
  it.effect("never deletes the source itself; the deletion after it deletes the recovery point when the policy asks and the content was verified", () =>
    Effect.gen(function* () {
      // Prepare
      const points = makeMemoryRecoveryPoints()
      const layer = Layer.mergeAll(points.layer, makeMemoryLedger().layer, settings)
      // Act
      const outcome = yield* archivedOutcome(subject, written(true), CONTENT, 0).pipe(Effect.provide(layer))
      const deletedByOutcome = points.deletions.length
      const { announced } = yield* archiveThenDelete(subject, CONTENT).pipe(Effect.provide(layer))
      // Assess
      assert.strictEqual(outcome._tag, "Succeeded")
      assert.isFalse(outcome.outcome.sourceDeleted)
      assert.strictEqual(outcome.outcome.verified, "content")
      assert.strictEqual(deletedByOutcome, 0)
      assert.isTrue(announced.sourceDeleted)
      assert.strictEqual(announced.sourceDeletion, "deleted")
      assert.deepStrictEqual(points.deletions, [{ recoveryPointArn: subject.recoveryPointArn, backupVaultName: "archive-and-delete", snapshotId: "snap-1" }])
    })
  )

  for (const [case_, verdict] of [
    ["the stored checksum differs", NONE],
    ["S3 holds the upload but its content read back differs from the source", UPLOAD_ONLY]
  ] as const) {
    it.effect(`keeps the recovery point and fails the step with the reason when ${case_}`, () =>
      Effect.gen(function* () {
        // Prepare
        const points = makeMemoryRecoveryPoints()
        // Act
        const { result, announced } = yield* archiveThenDelete(subject, verdict).pipe(Effect.provide(Layer.mergeAll(points.layer, makeMemoryLedger().layer, settings)))
        // Assess
        assert.strictEqual(result._tag, "Failed")
        assert.strictEqual(result._tag === "Failed" ? result.reason : "", "reason" in verdict ? verdict.reason : "")
        assert.isFalse(announced.sourceDeleted)
        assert.strictEqual(announced.status, "failed")
        assert.strictEqual(announced.verified, verdict.verified)
        assert.deepStrictEqual(points.deletions, [])
      })
    )
  }

  it.effect("keeps a verified recovery point when the policy does not ask for deletion", () =>
    Effect.gen(function* () {
      const points = makeMemoryRecoveryPoints()
      const keep = { ...subject, plan: { ...subject.plan, deleteSourceAfterVerify: false } }
      const { result, announced } = yield* archiveThenDelete(keep, CONTENT).pipe(Effect.provide(Layer.mergeAll(points.layer, makeMemoryLedger().layer, settings)))
      assert.strictEqual(result._tag, "Succeeded")
      assert.isFalse(announced.sourceDeleted)
      assert.isUndefined(announced.sourceDeletion)
      assert.deepStrictEqual(points.deletions, [])
    })
  )

  it.effect("says a source is not deleted when the describe after the deletion still sees it", () =>
    Effect.gen(function* () {
      const stubborn = makeMemoryRecoveryPoints()
      stubborn.answerWith("still-there")
      const { announced } = yield* archiveThenDelete(subject, CONTENT).pipe(Effect.provide(Layer.mergeAll(stubborn.layer, makeMemoryLedger().layer, settings)))
      assert.isFalse(announced.sourceDeleted)
      assert.strictEqual(announced.sourceDeletion, "still-there")
    })
  )
})
