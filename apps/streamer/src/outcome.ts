import { Clock, Effect } from "effect"
import { RecoveryPoints, type AwsError } from "@backup-actions/aws"
import type { DeviceUnavailable } from "./block-devices"
import type { BlockChecksumMismatch, UnsupportedBlockLayout } from "./ebs-direct-source"
import type { CommandFailed } from "./exec"
import type { NotMountable } from "./mount"
import type { SourceReadError } from "./stream-source"
import { ArchiveCompleted, type ArchiveMode, type ArchivePlan, type DetailOf } from "@backup-actions/contracts"
import { Publisher } from "@backup-actions/consumer"
import { failed, succeeded, type StepResult } from "@backup-actions/ledger"
import type { ArchiveResult } from "./archive-pipeline"

export type ArchiveDetail = DetailOf<typeof ArchiveCompleted>

export interface ArchiveSubject {
  readonly recoveryPointArn: string
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
  ...(subject.restoredVolumeId === undefined ? {} : { restoredVolumeId: subject.restoredVolumeId })
})

/**
 * The outcome of a written archive. The source is deleted only when the policy asks for it
 * and the stored object's checksum equals the one computed over the bytes we read.
 */
export const archivedOutcome = (
  subject: ArchiveSubject,
  written: ArchiveResult & { readonly format: "tar" | "raw"; readonly bucket: string; readonly key: string; readonly manifestKey: string },
  startedAt: number
) =>
  Effect.gen(function* () {
    const points = yield* RecoveryPoints
    const deleteSource = subject.plan.deleteSourceAfterVerify && written.verified
    if (subject.plan.deleteSourceAfterVerify && !written.verified) {
      yield* Effect.logError(`archive of ${subject.snapshotId} not verified (stored ${written.stored ?? "none"}, computed ${written.composite}); the source is kept`)
    }
    if (deleteSource) {
      yield* points.delete({ recoveryPointArn: subject.recoveryPointArn, backupVaultName: subject.backupVaultName, snapshotId: subject.snapshotId })
      yield* Effect.logInfo(`deleted recovery point ${subject.recoveryPointArn} after verifying its archive`)
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
      verified: written.verified,
      sourceDeleted: deleteSource,
      ...(written.resumedFromPart > 0 ? { resumedAfterPart: written.resumedFromPart } : {})
    }
    const result: StepResult<ArchiveDetail> = written.verified
      ? succeeded(detail)
      : failed(`stored checksum ${written.stored ?? "none"} differs from computed ${written.composite}`, { ...detail, status: "failed" })
    return result
  })

export const failedOutcome = (subject: ArchiveSubject, reason: string, startedAt: number) =>
  Effect.map(Clock.currentTimeMillis, (now): StepResult<ArchiveDetail> =>
    failed(reason, {
      ...base(subject),
      status: "failed",
      bytesRead: 0,
      bytesStored: 0,
      durationMs: now - startedAt,
      verified: false,
      sourceDeleted: false,
      reason
    })
  )

/** Everything an archive attempt can fail with, short of losing its claim on the step. */
export type ArchiveFailure =
  | AwsError
  | BlockChecksumMismatch
  | UnsupportedBlockLayout
  | DeviceUnavailable
  | NotMountable
  | SourceReadError
  | CommandFailed

/** The one-line reason kept in the ledger and sent in Archive Completed. */
export const describeArchiveFailure = (error: ArchiveFailure): string => {
  switch (error._tag) {
    case "AwsError":
      return `${error.operation} failed: ${error.code}: ${error.message}`
    case "BlockChecksumMismatch":
      return `block ${error.blockIndex} of ${error.snapshotId} failed its checksum (expected ${error.expected}, read ${error.actual})`
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
  }
}

/** Announces how the step ended; a step that was already finished announces nothing. */
export const publishOutcome = (result: StepResult<ArchiveDetail>) =>
  Effect.flatMap(Publisher, (publisher) => publisher.publish(ArchiveCompleted, result.outcome, [result.outcome.correlationId]))
