import { DescribeSnapshotsCommand } from "@aws-sdk/client-ec2"
import { Clock, Effect } from "effect"
import { Ec2, awsCall } from "@backup-actions/aws"
import { ServiceSettings } from "@backup-actions/config"
import { runStep } from "@backup-actions/consumer"
import { archiveToS3, type ArchiveResult } from "./archive-pipeline"
import { contentTypeOf } from "./compress"
import { openEbsDirectSource, CHUNK_BYTES } from "./ebs-direct-source"
import { archiveAction, archiveKeys } from "./keys"
import { rawImageManifestHeader, writeManifest } from "./manifest"
import { archiveStep, describeArchiveFailure, failedOutcome, verifiedOutcome, type ArchiveSubject } from "./outcome"
import { compressedUpperBound, partScheduleFor } from "./part-size"

/**
 * The snapshot an image is read from, for the manifest's header: its size and encryption (the
 * key's ARN), which a restore gives the new snapshot. None for a snapshot EC2 no longer knows.
 */
const describeSource = (snapshotId: string) =>
  Effect.gen(function* () {
    if (snapshotId === "") return undefined
    const ec2 = yield* Ec2
    const described = yield* awsCall("ec2:DescribeSnapshots", (abortSignal) =>
      ec2.send(new DescribeSnapshotsCommand({ Filters: [{ Name: "snapshot-id", Values: [snapshotId] }] }), { abortSignal })
    )
    const snapshot = described.Snapshots?.find((candidate) => candidate.SnapshotId === snapshotId)
    if (snapshot === undefined) return undefined
    return { snapshotId, volumeSize: snapshot.VolumeSize, encrypted: snapshot.Encrypted === true, kmsKeyId: snapshot.KmsKeyId }
  })

/**
 * Writes the manifest of a raw disk image archive and says where the archive and its manifest
 * are. Direct mode and volume mode's fallback (a disk with no filesystem to mount) write the
 * same raw image format, so they finish it the same way.
 */
export const finishRawImageArchive = (
  subject: ArchiveSubject,
  keys: ReturnType<typeof archiveKeys>,
  written: ArchiveResult,
  image: { readonly imageBytes: number; readonly blockSize?: number }
) =>
  Effect.gen(function* () {
    const settings = yield* ServiceSettings
    const source = yield* describeSource(subject.snapshotId)
    yield* writeManifest({
      bucket: settings.artifactBucket,
      key: keys.manifest,
      header: rawImageManifestHeader({
        snapshotId: subject.snapshotId,
        recoveryPointArn: subject.recoveryPointArn,
        archiveKey: keys.archive,
        compression: subject.plan.compression,
        ...image,
        chunkBytes: CHUNK_BYTES,
        archiveBytes: written.size,
        composite: written.composite,
        ...(source === undefined ? {} : { source })
      }),
      fragments: written.manifestFragments,
      archives: [{ key: keys.archive, parts: written.parts }]
    })
    return { ...written, format: "raw" as const, bucket: settings.artifactBucket, key: keys.archive, manifestKey: keys.manifest }
  })

/**
 * Archives a snapshot straight from its blocks through the EBS direct APIs: no volume,
 * no instance. The result is a compressed raw disk image (holes are zeros) with a manifest
 * of the blocks' SHA-256s, resumable part by part.
 */
export const archiveDirect = (subject: ArchiveSubject) =>
  Effect.gen(function* () {
    const settings = yield* ServiceSettings
    const step = { recoveryPointArn: subject.recoveryPointArn, action: archiveAction("direct") }
    yield* runStep(archiveStep(subject, step), ({ claim, record }) =>
      Effect.gen(function* () {
        const startedAt = yield* Clock.currentTimeMillis
        const keys = archiveKeys(subject.snapshotId, "direct", "raw", subject.plan.compression)
        const attempt = Effect.gen(function* () {
          if (subject.snapshotId === "") {
            return yield* failedOutcome(subject, `recovery point "${subject.recoveryPointArn}" is not an EBS snapshot ARN`, startedAt)
          }
          const { layout, open } = yield* openEbsDirectSource(subject.snapshotId)
          yield* Effect.logInfo(
            `archiving ${subject.snapshotId} directly: ${layout.volumeBytes} bytes, ${layout.listedBlocks} blocks with data`
          )
          const target = {
            bucket: settings.artifactBucket,
            key: keys.archive,
            contentType: contentTypeOf(subject.plan.compression),
            metadata: { "snapshot-id": subject.snapshotId, "recovery-point": subject.recoveryPointArn }
          }
          let lastLogged = 0
          const written = yield* archiveToS3({
            step: claim,
            target,
            compression: subject.plan.compression,
            // A sparse volume's archive is far smaller than its declared size: parts grow with what
            // was written, so that memory does not follow the declared size.
            partSchedule: partScheduleFor(compressedUpperBound(layout.volumeBytes)),
            resumable: true,
            previousUpload: record.upload,
            openSource: open,
            onProgress: (progress) =>
              Effect.suspend(() => {
                const percent = Math.floor((progress.inputBytes / Math.max(1, layout.volumeBytes)) * 100)
                if (percent < lastLogged + 10 && percent < 100) return Effect.void
                lastLogged = percent
                return Effect.logInfo(`${subject.snapshotId}: ${percent}% read, ${progress.storedBytes} bytes stored in ${progress.parts} parts`)
              })
          })
          const archived = yield* finishRawImageArchive(subject, keys, written, { imageBytes: layout.volumeBytes, blockSize: layout.blockSize })
          return yield* verifiedOutcome(subject, archived, startedAt)
        })
        return yield* attempt.pipe(
          Effect.catchTags({
            AwsError: (error) => failedOutcome(subject, describeArchiveFailure(error), startedAt),
            BlockChecksumMismatch: (error) => failedOutcome(subject, describeArchiveFailure(error), startedAt),
            BlockWithoutChecksum: (error) => failedOutcome(subject, describeArchiveFailure(error), startedAt),
            UnsupportedBlockLayout: (error) => failedOutcome(subject, describeArchiveFailure(error), startedAt)
          })
        )
      })
    )
  }).pipe(Effect.annotateLogs({ snapshotId: subject.snapshotId, mode: "direct" }))
