import { mkdir, mkdtemp, rm, statfs } from "node:fs/promises"
import { join } from "node:path"
import { Clock, Effect, Either } from "effect"
import { manifestMode, type TreeEntry } from "@backup-actions/archive"
import { BlockDevices } from "@backup-actions/aws"
import { ServiceSettings } from "@backup-actions/config"
import { runStep } from "@backup-actions/consumer"
import type { Claim, LeaseLost, UploadProgress } from "@backup-actions/ledger"
import { archiveToS3 } from "./archive-pipeline"
import { SOURCE_BUFFERS, contentTypeOf } from "./compress"
import { CHUNK_BYTES } from "./ebs-direct-source"
import { finishRawImageArchive } from "./direct"
import { exitedCleanly, run, streamingToolLimits, timeoutAsCommandFailed, type CommandFailed } from "./exec"
import { archiveAction, archiveKeys } from "./keys"
import { writeManifest } from "./manifest"
import { mountDisk, type MountedDisk } from "./mount"
import { archiveStep, describeArchiveFailure, failedOutcome, verifiedOutcome, type ArchiveSubject } from "./outcome"
import { compressedUpperBound, partScheduleFor } from "./part-size"
import { concatSources, rawMemberOffsets, rawMembersSource } from "./raw-members"
import { SCRATCH } from "./leftovers"
import { SourceReadError, fileChunkSource, toolChunkSource } from "./stream-source"
import { treeManifestOfTar } from "./tree-manifest"

/**
 * GNU tar, keeping modes, numeric owners, times, links, holes and extended attributes, of
 * the given members of a directory (`.`, the directory itself, unless told otherwise). With
 * `--one-file-system` each member stays within the filesystem it starts on.
 */
export const TAR_ARGS = (directory: string, members: ReadonlyArray<string> = ["."]): ReadonlyArray<string> => [
  "--create",
  "--file=-",
  `--directory=${directory}`,
  "--format=posix",
  "--sparse",
  "--numeric-owner",
  "--xattrs",
  "--one-file-system",
  "--sort=name",
  "--",
  ...members
]

/**
 * GNU tar's output as a chunk source, tar stopped with the scope. Its end is reported only
 * once tar exited 0, so a tar that failed or was killed half-way fails the archive before its
 * upload is completed. A timeout is reported as tar's failure (an archive step reports
 * CommandFailed), with the limit that ran out.
 */
export const tarSource = (directory: string, members?: ReadonlyArray<string>, onRead?: (chunk: Buffer) => void) =>
  Effect.flatMap(streamingToolLimits, (limits) =>
    toolChunkSource({ command: "tar", args: TAR_ARGS(directory, members), limits }, { detectHoles: false, ...(onRead === undefined ? {} : { onRead }) }, (tar) =>
      exitedCleanly(tar).pipe(Effect.catchTag("ToolTimedOut", (timedOut) => Effect.fail(timeoutAsCommandFailed(timedOut))))
    )
  )

/** A raw member's mode: read and write for root only (it is a disk's bytes); its owner is root, its time the archive's. */
const RAW_MEMBER_MODE = 0o600

/**
 * The bytes the filesystems hold in use, with room for tar's headers: an upper bound of the
 * tar's size, known before tar starts (only for choosing the part size).
 */
const tarSizeBound = (filesystems: MountedDisk["filesystems"]) =>
  Effect.tryPromise({
    try: async () => {
      let bytes = 0
      for (const filesystem of filesystems) {
        const stats = await statfs(filesystem.mountPoint)
        bytes += (stats.blocks - stats.bfree) * stats.bsize + (stats.files - stats.ffree) * TAR_BYTES_PER_ENTRY
      }
      return bytes
    },
    catch: (error) => new SourceReadError({ source: "statfs", reason: `cannot size the filesystems: ${String(error)}` })
  })

/** Tar's headers for one entry at most: a pax header with long names, and the ustar header. */
const TAR_BYTES_PER_ENTRY = 1536

/** A scratch directory for the manifest's spool, under the work directory, removed with the scope. */
const manifestScratch = (workDir: string) =>
  Effect.acquireRelease(
    Effect.tryPromise({
      try: () => mkdtemp(join(workDir, SCRATCH.manifest)),
      catch: (error) => new SourceReadError({ source: workDir, reason: `no scratch space for the manifest: ${String(error)}` })
    }),
    (directory) => Effect.promise(() => rm(directory, { recursive: true, force: true }))
  )

/**
 * A file-level archive of a disk: one tar of every mounted filesystem (the tree at the root
 * for a filesystem on the whole disk, a directory per partition and logical volume
 * otherwise), the disk ranges that hold no mounted filesystem as exact copies before them,
 * and a manifest of every entry with the disk's layout in its header. The manifest is made
 * from tar's output as it streams (each file is read once, by tar) and spooled to local disk.
 */
const tarArchive = (subject: ArchiveSubject, step: Claim, previousUpload: UploadProgress | undefined, mounted: MountedDisk) =>
  Effect.gen(function* () {
    const settings = yield* ServiceSettings
    const keys = archiveKeys(subject.snapshotId, "volume", "tar", subject.plan.compression)
    const mtimeSeconds = Math.floor((yield* Clock.currentTimeMillis) / 1000)
    const rawBytes = mounted.rawRanges.reduce((total, range) => total + range.bytes, 0)
    for (const volume of mounted.layout.volumes) {
      yield* Effect.logInfo(
        `${volume.name}${volume.filesystem === undefined ? "" : ` (${volume.filesystem})`}: ${volume.archivedAs}${volume.member === undefined ? "" : ` as ${volume.member}`}${volume.reason === undefined ? "" : `: ${volume.reason}`}`
      )
    }
    const bound = (yield* tarSizeBound(mounted.filesystems)) + rawBytes + mounted.rawRanges.length * TAR_BYTES_PER_ENTRY
    yield* Effect.logInfo(`archiving ${mounted.filesystems.length} filesystems and ${mounted.rawRanges.length} raw ranges (${rawBytes} bytes) of ${mounted.layout.volumes.length} volumes, at most ${bound} bytes of tar`)
    const spool = join(yield* manifestScratch(settings.workDir), "entries.ndjson")
    const rawAttributes = { mode: RAW_MEMBER_MODE, uid: 0, gid: 0, mtimeSeconds }
    const rawLayout = rawMemberOffsets(mounted.rawRanges, rawAttributes)
    const tree = yield* treeManifestOfTar(mounted.root, spool, rawLayout.end)
    const hashes = new Map<string, string>()
    const members = mounted.filesystems.map((filesystem) => filesystem.member).sort()
    const written = yield* archiveToS3({
      step,
      target: { bucket: settings.artifactBucket, key: keys.archive, contentType: "application/x-tar" + (subject.plan.compression === "zstd" ? "+zstd" : "+gzip") },
      compression: subject.plan.compression,
      partSchedule: partScheduleFor(compressedUpperBound(bound + CHUNK_BYTES)),
      resumable: false,
      previousUpload,
      openSource: () =>
        mounted.rawRanges.length === 0
          ? tarSource(mounted.root, members, tree.onRead)
          : concatSources<SourceReadError | CommandFailed, never>([
              rawMembersSource(mounted.rawRanges, rawAttributes, SOURCE_BUFFERS, (member, sha256) => hashes.set(member, sha256)),
              tarSource(mounted.root, members, tree.onRead)
            ])
    })
    const totals = yield* tree.finish
    const rawEntries = mounted.rawRanges.map((range): TreeEntry => {
      const sha256 = hashes.get(range.member)
      return {
        path: range.member,
        offset: rawLayout.offsets.get(range.member) ?? 0,
        type: "file",
        mode: manifestMode(RAW_MEMBER_MODE),
        uid: 0,
        gid: 0,
        size: range.bytes,
        mtime: new Date(mtimeSeconds * 1000).toISOString(),
        ...(sha256 === undefined ? {} : { sha256 })
      }
    })
    const entryCount = totals.entries + rawEntries.length
    const fileBytes = totals.fileBytes + rawBytes
    yield* Effect.logInfo(`archived ${entryCount} entries (${fileBytes} bytes in files, ${rawBytes} of them raw ranges) in ${written.size} bytes`)
    const wholeDisk = mounted.layout.kind === "filesystem" ? mounted.filesystems[0] : undefined
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
        ...(wholeDisk === undefined ? {} : { filesystem: wholeDisk.fsType }),
        entries: entryCount,
        fileBytes,
        archiveBytes: written.size,
        checksum: { algorithm: "SHA256", type: "COMPOSITE", value: written.composite },
        layout: mounted.layout
      },
      fragments: [],
      archives: [{ key: keys.archive, parts: written.parts }],
      lines: linesOf(rawEntries, tree.lines)
    })
    return { ...written, format: "tar" as const, bucket: settings.artifactBucket, key: keys.archive, manifestKey: keys.manifest }
  })

/** The raw members' lines, then the tar's, in the order the archive holds them. */
function* linesOf(rawEntries: ReadonlyArray<TreeEntry>, treeLines: () => Iterable<string>): Generator<string> {
  for (const entry of rawEntries) yield JSON.stringify(entry)
  yield* treeLines()
}

/** The raw disk when no filesystem can be mounted: holes are detected and cost almost nothing. */
const rawArchive = (subject: ArchiveSubject, step: Claim, previousUpload: UploadProgress | undefined, device: string) =>
  Effect.gen(function* () {
    const settings = yield* ServiceSettings
    const keys = archiveKeys(subject.snapshotId, "volume", "raw", subject.plan.compression)
    const size = yield* run("blockdev", ["--getsize64", device]).pipe(
      Effect.map((output) => Number(output.trim())),
      Effect.catchTag("ToolTimedOut", (timedOut) => Effect.fail(timeoutAsCommandFailed(timedOut)))
    )
    const written = yield* archiveToS3({
      step,
      target: { bucket: settings.artifactBucket, key: keys.archive, contentType: contentTypeOf(subject.plan.compression) },
      compression: subject.plan.compression,
      partSchedule: partScheduleFor(compressedUpperBound(size)),
      resumable: false,
      previousUpload,
      openSource: () => fileChunkSource(device, size, { detectHoles: true, buffers: SOURCE_BUFFERS })
    })
    return yield* finishRawImageArchive(subject, keys, written, { imageBytes: size })
  })

/**
 * Archives the volume the restorer made: attached as a block device, every filesystem on it
 * mounted read-only (its journal replayed on this copy first) and written as one file-level
 * tar with the partitions no filesystem could be mounted from as raw members; a disk of
 * which nothing can be mounted is archived as a raw image.
 */
export const archiveVolume = (subject: ArchiveSubject & { readonly restoredVolumeId: string }) =>
  Effect.gen(function* () {
    const devices = yield* BlockDevices
    const settings = yield* ServiceSettings
    const step = { recoveryPointArn: subject.recoveryPointArn, action: archiveAction("volume") }
    yield* runStep(archiveStep(subject, step), ({ claim, record }) =>
      Effect.gen(function* () {
        const startedAt = yield* Clock.currentTimeMillis
        const attempt = Effect.scoped(
          Effect.gen(function* () {
            yield* Effect.promise(() => mkdir(settings.workDir, { recursive: true }))
            const device = yield* devices.attach(subject.restoredVolumeId)
            const mounted = yield* Effect.either(mountDisk(device, settings.workDir))
            const written = Either.isRight(mounted)
              ? yield* tarArchive(subject, claim, record.upload, mounted.right)
              : yield* Effect.logWarning(`cannot mount ${device} (${mounted.left.reason}); archiving the raw disk instead`).pipe(
                  Effect.zipRight(rawArchive(subject, claim, record.upload, device))
                )
            return yield* verifiedOutcome(subject, written, startedAt)
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
  }).pipe(Effect.annotateLogs({ snapshotId: subject.snapshotId, mode: "volume" }))
