import { spawn } from "node:child_process"
import { mkdir } from "node:fs/promises"
import { Clock, Duration, Effect, Either, Option } from "effect"
import { ServiceSettings } from "@backup-actions/config"
import { runStep, type LeaseLost, type StepKey, type UploadProgress } from "@backup-actions/ledger"
import { archiveToS3, type ChunkSource } from "./archive-pipeline"
import { BlockDevices } from "./block-devices"
import { SOURCE_BUFFERS, contentTypeOf } from "./compress"
import { CHUNK_BYTES } from "./ebs-direct-source"
import { finishRawImageArchive } from "./direct"
import { CommandFailed, run } from "./exec"
import { archiveAction, archiveKeys } from "./keys"
import { writeManifest } from "./manifest"
import { mountReadOnly, type MountedFilesystem } from "./mount"
import { archivedOutcome, describeArchiveFailure, failedOutcome, publishOutcome, type ArchiveSubject } from "./outcome"
import { compressedUpperBound, partSizeFor } from "./part-size"
import { SourceReadError, fileChunkSource, streamChunkSource } from "./stream-source"
import { describeTree } from "./tree-manifest"

/** GNU tar, keeping modes, numeric owners, times, links, holes and extended attributes. */
export const TAR_ARGS = (directory: string): ReadonlyArray<string> => [
  "--create",
  "--file=-",
  `--directory=${directory}`,
  "--format=posix",
  "--sparse",
  "--numeric-owner",
  "--xattrs",
  "--one-file-system",
  "--sort=name",
  "."
]

/** A file-level tar of a mounted filesystem, with a manifest of every entry. */
const tarArchive = (subject: ArchiveSubject, step: StepKey, previousUpload: UploadProgress | undefined, mounted: MountedFilesystem) =>
  Effect.gen(function* () {
    const settings = yield* ServiceSettings
    const keys = archiveKeys(subject.snapshotId, "volume", "tar", subject.plan.compression)
    const entries = yield* describeTree(mounted.mountPoint)
    const fileBytes = entries.reduce((total, entry) => total + entry.size, 0)
    yield* Effect.logInfo(`archiving ${entries.length} entries (${fileBytes} bytes in files) from ${mounted.source} (${mounted.fsType})`)
    let tarExit: Promise<number | null> = Promise.resolve(0)
    let tarErrors = ""
    const openSource = (): Effect.Effect<ChunkSource<SourceReadError>> =>
      Effect.sync(() => {
        const child = spawn("tar", TAR_ARGS(mounted.mountPoint), { stdio: ["ignore", "pipe", "pipe"] })
        child.stderr.on("data", (data: Buffer) => (tarErrors += data.toString()))
        tarExit = new Promise((resolve) => child.on("close", resolve))
        return streamChunkSource("tar", child.stdout, { detectHoles: false })
      })
    const written = yield* archiveToS3({
      step,
      target: { bucket: settings.artifactBucket, key: keys.archive, contentType: "application/x-tar" + (subject.plan.compression === "zstd" ? "+zstd" : "+gzip") },
      compression: subject.plan.compression,
      partSize: partSizeFor(compressedUpperBound(fileBytes + entries.length * 1536 + CHUNK_BYTES)),
      resumable: false,
      previousUpload,
      openSource
    })
    const exitCode = yield* Effect.promise(() => tarExit)
    if (exitCode !== 0) {
      return yield* new CommandFailed({ command: "tar", exitCode, stderr: tarErrors.trim() })
    }
    yield* writeManifest({
      bucket: settings.artifactBucket,
      key: keys.manifest,
      header: {
        kind: "backup-actions/file-manifest",
        version: 1,
        snapshotId: subject.snapshotId,
        recoveryPointArn: subject.recoveryPointArn,
        archive: keys.archive,
        format: "tar",
        compression: subject.plan.compression,
        filesystem: mounted.fsType,
        entries: entries.length,
        fileBytes,
        archiveBytes: written.size,
        checksum: { algorithm: "SHA256", type: "COMPOSITE", value: written.composite }
      },
      fragments: [],
      lines: entries.map((entry) => JSON.stringify(entry))
    })
    return { ...written, format: "tar" as const, bucket: settings.artifactBucket, key: keys.archive, manifestKey: keys.manifest }
  })

/** The raw disk when no filesystem can be mounted: holes are detected and cost almost nothing. */
const rawArchive = (subject: ArchiveSubject, step: StepKey, previousUpload: UploadProgress | undefined, device: string) =>
  Effect.gen(function* () {
    const settings = yield* ServiceSettings
    const keys = archiveKeys(subject.snapshotId, "volume", "raw", subject.plan.compression)
    const size = yield* Effect.map(run("blockdev", ["--getsize64", device]), (output) => Number(output.trim()))
    const written = yield* archiveToS3({
      step,
      target: { bucket: settings.artifactBucket, key: keys.archive, contentType: contentTypeOf(subject.plan.compression) },
      compression: subject.plan.compression,
      partSize: partSizeFor(compressedUpperBound(size)),
      resumable: false,
      previousUpload,
      openSource: () => fileChunkSource(device, size, { detectHoles: true, buffers: SOURCE_BUFFERS })
    })
    return yield* finishRawImageArchive(subject, keys, written, { imageBytes: size })
  })

/**
 * Archives the volume the restorer made: attached as a block device, mounted read-only and
 * written as a file-level tar; a disk that can't be mounted is archived as a raw image.
 */
export const archiveVolume = (subject: ArchiveSubject & { readonly restoredVolumeId: string }) =>
  Effect.gen(function* () {
    const devices = yield* BlockDevices
    const settings = yield* ServiceSettings
    const step = { recoveryPointArn: subject.recoveryPointArn, action: archiveAction("volume") }
    const result = yield* runStep(step, { lease: Duration.seconds(settings.stepLeaseSeconds) }, (claimed) =>
      Effect.gen(function* () {
        const startedAt = yield* Clock.currentTimeMillis
        const attempt = Effect.scoped(
          Effect.gen(function* () {
            yield* Effect.promise(() => mkdir(settings.workDir, { recursive: true }))
            const device = yield* devices.attach(subject.restoredVolumeId)
            const mounted = yield* Effect.either(mountReadOnly(device, settings.workDir))
            const written = Either.isRight(mounted)
              ? yield* tarArchive(subject, step, claimed.upload, mounted.right)
              : yield* Effect.logWarning(`cannot mount ${device} (${mounted.left.reason}); archiving the raw disk instead`).pipe(
                  Effect.zipRight(rawArchive(subject, step, claimed.upload, device))
                )
            return yield* archivedOutcome(subject, written, startedAt)
          })
        )
        return yield* attempt.pipe(
          Effect.catchIf(
            (error): error is Exclude<typeof error, LeaseLost> => error._tag !== "LeaseLost",
            (error) => failedOutcome(subject, describeArchiveFailure(error), startedAt)
          )
        )
      })
    )
    if (Option.isSome(result)) yield* publishOutcome(result.value)
  }).pipe(Effect.annotateLogs({ snapshotId: subject.snapshotId, mode: "volume" }))
