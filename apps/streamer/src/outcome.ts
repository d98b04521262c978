import { Clock, Effect } from "effect"
import { RecoveryPoints, type AwsError, type DeviceUnavailable, type RecoveryPointRef } from "@backup-actions/aws"
import type { BlockChecksumMismatch, BlockWithoutChecksum, UnsupportedBlockLayout } from "./ebs-direct-source"
import type { CommandFailed, ToolTimedOut } from "./exec"
import type { NotMountable } from "./mount"
import type { SourceReadError } from "./stream-source"
import { ArchiveCompleted, isSourceGone, type ArchiveMode, type ArchivePlan, type Compression, type DetailOf } from "@backup-actions/contracts"
import { deleteSourceOnce } from "@backup-actions/consumer"
import { failed, succeeded, type StepKey, type StepResult } from "@backup-actions/ledger"
import type { ArchiveResult } from "./archive-pipeline"
import { verifyArchive, type ArchiveToVerify, type ContentVerdict } from "./content-verification"

export type ArchiveDetail = DetailOf<typeof ArchiveCompleted>

export interface ArchiveSubject {
  readonly recoveryPointArn: string
  /** The protected resource the recovery point is a backup of, carried into Archive Completed; absent when the announcing event came from an earlier build. */
  readonly resourceArn?: string | undefined
  readonly backupVaultName: string
  readonly snapshotId: string
  readonly plan: ArchivePlan
  readonly mode: ArchiveMode
  readonly restoredVolumeId?: string
}

export const idempotencyKey = (subject: ArchiveSubject): string => `${subject.recoveryPointArn}#archive:${subject.mode}`

const base = (subject: ArchiveSubject) => ({
  schemaVersion: 1 as const,
  correlationId: subject.recoveryPointArn,
  idempotencyKey: idempotencyKey(subject),
  snapshotId: subject.snapshotId,
  mode: subject.mode,
  compression: subject.plan.compression,
  ...(subject.resourceArn === undefined ? {} : { resourceArn: subject.resourceArn }),
  ...(subject.restoredVolumeId === undefined ? {} : { restoredVolumeId: subject.restoredVolumeId })
})

/** A written archive: where it and its manifest are, and how its upload ended. */
export type WrittenArchive = ArchiveResult & { readonly format: "tar" | "raw"; readonly bucket: string; readonly key: string; readonly manifestKey: string }

/**
 * The outcome of a written archive, by how far it was verified: only an archive whose content
 * was read back and matched its source succeeds. It never deletes the source: that is a step
 * of its own, after this outcome is recorded (see `archiveStep`).
 */
export const archivedOutcome = (subject: ArchiveSubject, written: WrittenArchive, verdict: ContentVerdict, startedAt: number) =>
  Effect.gen(function* () {
    if (subject.plan.deleteSourceAfterVerify && verdict.verified !== "content") {
      yield* Effect.logError(`archive of ${subject.snapshotId} not verified to its content; the source is kept`)
    }
    const now = yield* Clock.currentTimeMillis
    const detail: ArchiveDetail = {
      ...base(subject),
      status: "archived",
      format: written.format,
      location: { bucket: written.bucket, key: written.key },
      manifest: { bucket: written.bucket, key: written.manifestKey },
      bytesRead: written.inputBytes,
      bytesStored: written.size,
      durationMs: now - startedAt,
      checksum: { algorithm: "SHA256", type: "COMPOSITE", value: written.composite },
      verified: verdict.verified,
      sourceDeleted: false,
      ...(written.resumedFromPart > 0 ? { resumedAfterPart: written.resumedFromPart } : {})
    }
    const result: StepResult<ArchiveDetail> =
      verdict.verified === "content" ? succeeded(detail) : failed(verdict.reason, { ...detail, status: "failed", reason: verdict.reason })
    return result
  })

/** A written archive as the read-back sees it. */
export const storedArchive = (written: ArchiveResult & { readonly bucket: string; readonly key: string }, compression: Compression): ArchiveToVerify => ({
  bucket: written.bucket,
  key: written.key,
  size: written.size,
  etag: written.etag,
  compression,
  uploadVerified: written.verified
})

/** Reads a written archive back and verifies it against its source, then says how it ended. */
export const verifiedOutcome = (subject: ArchiveSubject, written: WrittenArchive, startedAt: number) =>
  Effect.flatMap(
    verifyArchive(storedArchive(written, subject.plan.compression), written.manifestKey),
    (verdict) => archivedOutcome(subject, written, verdict, startedAt)
  )

/**
 * After a verified archive is recorded, and only when the policy asks: deletes the recovery
 * point as its own ledger step and says in the outcome what the deletion left.
 */
export const deleteSourceIfAsked = (plan: ArchivePlan, source: RecoveryPointRef, outcome: ArchiveDetail) =>
  plan.deleteSourceAfterVerify && outcome.status === "archived" && outcome.verified === "content"
    ? Effect.flatMap(RecoveryPoints, (points) => deleteSourceOnce(source.recoveryPointArn, points.delete(source))).pipe(
        Effect.map((state): ArchiveDetail => ({ ...outcome, sourceDeleted: isSourceGone(state), sourceDeletion: state }))
      )
    : Effect.succeed(outcome)

/** The step of an archive of an EBS snapshot: announced as Archive Completed, and the source deleted after it when asked. */
export const archiveStep = (subject: ArchiveSubject, step: StepKey) => ({
  step,
  contract: ArchiveCompleted,
  resources: [subject.recoveryPointArn],
  gaveUp: (reason: string): ArchiveDetail => failedDetail(base(subject), reason, 0),
  afterSuccess: (outcome: ArchiveDetail) =>
    deleteSourceIfAsked(subject.plan, { recoveryPointArn: subject.recoveryPointArn, backupVaultName: subject.backupVaultName, snapshotId: subject.snapshotId }, outcome)
})

/** The outcome of an archive that failed before it wrote anything. */
export const failedDetail = (common: Omit<ArchiveDetail, "status" | "bytesRead" | "bytesStored" | "durationMs" | "verified" | "sourceDeleted">, reason: string, durationMs: number): ArchiveDetail => ({
  ...common,
  status: "failed",
  bytesRead: 0,
  bytesStored: 0,
  durationMs,
  verified: "none",
  sourceDeleted: false,
  reason
})

export const failedOutcome = (subject: ArchiveSubject, reason: string, startedAt: number) =>
  Effect.map(Clock.currentTimeMillis, (now): StepResult<ArchiveDetail> => failed(reason, failedDetail(base(subject), reason, now - startedAt)))

/** Everything an archive attempt can fail with, short of losing its claim on the step. */
export type ArchiveFailure =
  | AwsError
  | BlockChecksumMismatch
  | BlockWithoutChecksum
  | UnsupportedBlockLayout
  | DeviceUnavailable
  | NotMountable
  | SourceReadError
  | CommandFailed
  | ToolTimedOut

/** The one-line reason kept in the ledger and sent in Archive Completed. */
export const describeArchiveFailure = (error: ArchiveFailure): string => {
  switch (error._tag) {
    case "AwsError":
      return `${error.operation} failed: ${error.code}: ${error.message}`
    case "BlockChecksumMismatch":
      return `block ${error.blockIndex} of ${error.snapshotId} failed its checksum (expected ${error.expected}, read ${error.actual})`
    case "BlockWithoutChecksum":
      return `block ${error.blockIndex} of ${error.snapshotId} came without a SHA-256 checksum (${error.algorithm ?? "none"}), so it cannot be verified`
    case "UnsupportedBlockLayout":
      return `cannot read ${error.snapshotId}: ${error.reason}`
    case "CommandFailed":
      return `${error.command} exited with ${error.exitCode ?? "an error"}: ${error.stderr}`
    case "DeviceUnavailable":
      return `volume ${error.volumeId}: ${error.reason}`
    case "NotMountable":
      return `${error.device}: ${error.reason}`
    case "SourceReadError":
      return `reading ${error.source}: ${error.reason}`
    case "ToolTimedOut":
      return error.message
  }
}
