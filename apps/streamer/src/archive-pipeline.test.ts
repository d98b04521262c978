import { createHash, randomBytes } from "node:crypto"
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { CompleteSnapshotCommand, PutSnapshotBlockCommand, StartSnapshotCommand } from "@aws-sdk/client-ebs"
import { CreateMultipartUploadCommand, GetObjectCommand, ListMultipartUploadsCommand, ListObjectsV2Command, PutObjectCommand } from "@aws-sdk/client-s3"
import { PutParameterCommand } from "@aws-sdk/client-ssm"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { Cause, Effect, Exit, Layer, Option } from "effect"
import { BlockDevices, Ebs, S3, Ssm, awsCall } from "@backup-actions/aws"
import type { ArchivePlan } from "@backup-actions/contracts"
import { Publisher } from "@backup-actions/consumer"
import { ServiceSettings, type Policy } from "@backup-actions/config"
import { LeaseLost, Ledger } from "@backup-actions/ledger"
import { makeMemoryLedger } from "@backup-actions/ledger/testing"
import { EMULATOR_REGION, startServiceHarness, type ServiceHarness } from "@backup-actions/local"
import { archiveToS3, fragmentKey, type ChunkJob, type ChunkSource } from "./archive-pipeline"
import { compressChunk } from "./compress"
import { archiveDirect } from "./direct"
import { archiveDump, dumpKeys } from "./dump"
import { exitedCleanly, run, STREAMING_TOOL } from "./exec"
import { archiveKeys } from "./keys"
import { writeManifest } from "./manifest"
import { fileChunkSource, toolChunkSource } from "./stream-source"
import { archiveVolume } from "./volume"

/** The streamer's bucket, ledger and bus on the emulator; volumes are disk images of the test's making. */
let harness: ServiceHarness
const scratch = mkdtempSync(join(tmpdir(), "archive-pipeline-test-"))
/** Disk images by volume id, attached read-only through a loop device as an EBS volume would be. */
const images = new Map<string, string>()

beforeAll(async () => {
  harness = await startServiceHarness({ prefix: "streamer-pipeline-test", service: "streamer" })
})
afterAll(async () => {
  await harness.stop()
  rmSync(scratch, { recursive: true, force: true })
})

const imageBlockDevices = Layer.succeed(BlockDevices, {
  attach: (volumeId: string) =>
    Effect.acquireRelease(
      run("losetup", ["--find", "--show", "--read-only", images.get(volumeId) ?? ""]).pipe(
        Effect.map((output) => output.trim()),
        Effect.orDie
      ),
      (loop) => run("losetup", ["--detach", loop]).pipe(Effect.orDie)
    )
})

const policy: Policy = { rules: [] }
const streamerLayer = () => harness.layer(Layer.mergeAll(Ledger.Live, Publisher.Live, imageBlockDevices), policy)

const plan: ArchivePlan = { rule: "test", mode: "volume", compression: "zstd", deleteSourceAfterVerify: false }

/** Every key in the bucket under a prefix. */
const keysUnder = (prefix: string) =>
  Effect.gen(function* () {
    const s3 = yield* S3
    const listed = yield* awsCall("s3:ListObjectsV2", (abortSignal) =>
      s3.send(new ListObjectsV2Command({ Bucket: harness.stack.artifactBucket, Prefix: prefix }), { abortSignal })
    )
    return (listed.Contents ?? []).map((object) => object.Key ?? "").sort()
  })

/** The multipart uploads still open under a prefix. */
const uploadsUnder = (prefix: string) =>
  Effect.gen(function* () {
    const s3 = yield* S3
    const listed = yield* awsCall("s3:ListMultipartUploads", (abortSignal) =>
      s3.send(new ListMultipartUploadsCommand({ Bucket: harness.stack.artifactBucket, Prefix: prefix }), { abortSignal })
    )
    return (listed.Uploads ?? []).map((upload) => upload.Key ?? "")
  })

const readObject = (key: string) =>
  Effect.flatMap(S3, (s3) =>
    awsCall("s3:GetObject", async (abortSignal) => {
      const object = await s3.send(new GetObjectCommand({ Bucket: harness.stack.artifactBucket, Key: key }), { abortSignal })
      return object.Body === undefined ? "" : object.Body.transformToString()
    })
  )

/** A file of random bytes (so that it does not compress): several parts of the smallest size. */
const randomFile = (path: string, bytes: number) => writeFileSync(path, randomBytes(bytes))

/** An ext4 disk image holding a directory's files. */
const ext4Image = (name: string, files: Record<string, number>) =>
  Effect.gen(function* () {
    const content = join(scratch, `${name}-content`)
    mkdirSync(content)
    for (const [file, bytes] of Object.entries(files)) randomFile(join(content, file), bytes)
    const image = join(scratch, `${name}.img`)
    yield* run("mkfs.ext4", ["-q", "-F", "-d", content, image, "64M"])
    return image
  })

/** A snapshot with the blocks of a disk image, written through the EBS direct APIs as AWS Backup would leave it. */
const snapshotOf = (data: Buffer) =>
  Effect.gen(function* () {
    const ebs = yield* Ebs
    const block = 512 * 1024
    const started = yield* awsCall("ebs:StartSnapshot", (abortSignal) => ebs.send(new StartSnapshotCommand({ VolumeSize: 1, Timeout: 60 }), { abortSignal }))
    const snapshotId = started.SnapshotId ?? ""
    const blocks = Math.ceil(data.length / block)
    yield* Effect.forEach(
      Array.from({ length: blocks }, (_, index) => index),
      (index) => {
        const body = Buffer.alloc(block)
        data.copy(body, 0, index * block, Math.min(data.length, (index + 1) * block))
        const checksum = createHash("sha256").update(body).digest("base64")
        return awsCall("ebs:PutSnapshotBlock", (abortSignal) =>
          ebs.send(
            new PutSnapshotBlockCommand({ SnapshotId: snapshotId, BlockIndex: index, BlockData: body, DataLength: block, Checksum: checksum, ChecksumAlgorithm: "SHA256" }),
            { abortSignal }
          )
        )
      },
      { concurrency: 4, discard: true }
    )
    yield* awsCall("ebs:CompleteSnapshot", (abortSignal) => ebs.send(new CompleteSnapshotCommand({ SnapshotId: snapshotId, ChangedBlocksCount: blocks }), { abortSignal }))
    return snapshotId
  })

const recoveryPointOf = (snapshotId: string) => `arn:aws:ec2:${EMULATOR_REGION}::snapshot/${snapshotId}`

describe("an archive whose tool does not end well", () => {
  it.live("is never completed: the upload is aborted, its fragments deleted, and the good archive at the key stays", () =>
    Effect.gen(function* () {
      const ledger = yield* Ledger
      const s3 = yield* S3
      const settings = yield* ServiceSettings
      const tools = [
        { name: "exits non-zero", script: "head -c 12000000 /dev/urandom; echo 'tar: ./var/log: Cannot read: Input/output error' >&2; exit 2", exitCode: 2 },
        { name: "is killed", script: "head -c 12000000 /dev/urandom; kill -9 $$", exitCode: null }
      ]
      for (const [index, tool] of tools.entries()) {
        // Prepare: a good archive at the key, from an earlier run
        const key = `archives/ebs/snap-0failingtool000${index}/volume/files.tar.zst`
        yield* awsCall("s3:PutObject", (abortSignal) =>
          s3.send(new PutObjectCommand({ Bucket: settings.artifactBucket, Key: key, Body: "the good archive" }), { abortSignal })
        )
        const { claim } = yield* ledger.claim({ recoveryPointArn: `arn:test:${index}`, action: "archive:volume" }, { leaseMs: 60_000, maxAttempts: 3 })
        // Act: a tool that writes two parts' worth, then ends badly
        const error = yield* Effect.flip(
          archiveToS3({
            step: claim,
            target: { bucket: settings.artifactBucket, key, contentType: "application/x-tar+zstd" },
            compression: "zstd",
            partSize: 5 * 1024 * 1024,
            resumable: false,
            previousUpload: undefined,
            openSource: () => toolChunkSource({ command: "sh", args: ["-c", tool.script], limits: STREAMING_TOOL }, { detectHoles: false }, (sh) => exitedCleanly(sh))
          })
        )
        // Assess: the tool's failure, and nothing of this run left in the bucket
        assert.strictEqual(error._tag, "CommandFailed", tool.name)
        assert.strictEqual(error._tag === "CommandFailed" ? error.exitCode : undefined, tool.exitCode, tool.name)
        assert.strictEqual(yield* readObject(key), "the good archive", tool.name)
        assert.deepStrictEqual(yield* uploadsUnder(key), [], tool.name)
        assert.deepStrictEqual(yield* keysUnder(`${key}.parts/`), [], tool.name)
        assert.isUndefined((yield* ledger.get(claim))?.upload, tool.name)
      }
    }).pipe(Effect.provide(streamerLayer()))
  )
})

/** The memory ledger, its progress records refused from the `lostAt`-th on, as when another worker took the step over. */
const ledgerLosingTheStep = (lostAt: number) => {
  const memory = makeMemoryLedger()
  let saves = 0
  return Layer.succeed(Ledger, {
    ...memory.ledger,
    saveUpload: (claim, upload) =>
      Effect.suspend(() => {
        saves += 1
        return saves >= lostAt ? Effect.fail(new LeaseLost({ recoveryPointArn: claim.recoveryPointArn, action: claim.action })) : memory.ledger.saveUpload(claim, upload)
      })
  })
}

/** Archives a file of three parts to a key of its own; the ledger is the layer's. */
const archiveFile = (name: string, options: { readonly resumable: boolean; readonly announcedBytes?: number; readonly onProgress?: () => Effect.Effect<void> }) =>
  Effect.gen(function* () {
    const ledger = yield* Ledger
    const settings = yield* ServiceSettings
    const file = join(scratch, `${name}.img`)
    randomFile(file, 12 * 1024 * 1024)
    const key = `archives/ebs/snap-0${name}/direct/disk.img.zst`
    const { claim } = yield* ledger.claim({ recoveryPointArn: `arn:test:${name}`, action: "archive:direct" }, { leaseMs: 60_000, maxAttempts: 3 })
    const result = yield* Effect.exit(
      archiveToS3({
        step: claim,
        target: { bucket: settings.artifactBucket, key, contentType: "application/zstd" },
        compression: "zstd",
        partSize: 5 * 1024 * 1024,
        uploadConcurrency: 1,
        resumable: options.resumable,
        previousUpload: undefined,
        openSource: (offset) => fileChunkSource(file, options.announcedBytes ?? 12 * 1024 * 1024, { detectHoles: true, buffers: 2, startOffset: offset }),
        ...(options.onProgress === undefined ? {} : { onProgress: options.onProgress })
      })
    )
    return { result, key, uploads: yield* uploadsUnder(key), fragments: yield* keysUnder(`${key}.parts/`) }
  })

describe("an upload that did not complete", () => {
  it.live("stays for the next worker when a resumable archive loses its step or is interrupted, with the fragments it resumes from", () =>
    Effect.gen(function* () {
      // Act
      const lost = yield* archiveFile("lostresumable", { resumable: true }).pipe(Effect.provide(ledgerLosingTheStep(3)))
      const interrupted = yield* archiveFile("interruptedresumable", { resumable: true, onProgress: () => Effect.interrupt }).pipe(
        Effect.provide(ledgerLosingTheStep(100))
      )
      // Assess
      assert.isTrue(Exit.isFailure(lost.result) && Cause.failureOption(lost.result.cause).pipe(Option.exists((error) => error._tag === "LeaseLost")))
      assert.deepStrictEqual(lost.uploads, [lost.key])
      assert.include(lost.fragments, fragmentKey(lost.key, 1))
      assert.isTrue(Exit.isInterrupted(interrupted.result))
      assert.deepStrictEqual(interrupted.uploads, [interrupted.key])
      assert.include(interrupted.fragments, fragmentKey(interrupted.key, 1))
    }).pipe(Effect.provide(streamerLayer()))
  )

  it.live("is aborted when an archive that cannot resume loses its step, and when any archive fails, its fragments deleted then", () =>
    Effect.gen(function* () {
      // Act: a stream that loses its step; a resumable source that fails half-way (the file is shorter than announced)
      const lost = yield* archiveFile("loststream", { resumable: false }).pipe(Effect.provide(ledgerLosingTheStep(3)))
      const failed = yield* archiveFile("failedresumable", { resumable: true, announcedBytes: 20 * 1024 * 1024 }).pipe(
        Effect.provide(ledgerLosingTheStep(100))
      )
      // Assess
      assert.isTrue(Exit.isFailure(lost.result))
      assert.deepStrictEqual(lost.uploads, [])
      assert.isTrue(Exit.isFailure(failed.result) && Cause.failureOption(failed.result.cause).pipe(Option.exists((error) => error._tag === "SourceReadError")))
      assert.deepStrictEqual(failed.uploads, [])
      assert.deepStrictEqual(failed.fragments, [])
    }).pipe(Effect.provide(streamerLayer()))
  )
})

describe("a run of holes", () => {
  it.live("is stored as one zero frame per chunk, cut across parts at a chunk boundary as single chunks would be", () =>
    Effect.gen(function* () {
      const ledger = yield* Ledger
      const settings = yield* ServiceSettings
      // Prepare: one chunk of random bytes, then a run of holes whose zero frames fill the rest of a part and part of another
      const chunk = 4 * 1024 * 1024
      const partSize = 5 * 1024 * 1024
      const data = randomBytes(chunk)
      const dataFrame = yield* compressChunk(data, "zstd")
      const zeroFrame = yield* compressChunk(Buffer.alloc(chunk), "zstd")
      const holes = Math.ceil((3 * 1024 * 1024) / zeroFrame.length)
      const jobs: Array<ChunkJob<never>> = [
        { inputBytes: chunk, produce: Effect.succeed({ bytes: Option.some(data), manifestLines: ["{\"block\":0}"] }) },
        { inputBytes: chunk, chunks: holes, produce: Effect.succeed({ bytes: Option.none(), manifestLines: [] }) }
      ]
      const source: ChunkSource<never> = { pull: Effect.sync(() => Option.fromNullable(jobs.shift())) }
      const key = "archives/ebs/snap-0holerun00000001/direct/disk.img.zst"
      const { claim } = yield* ledger.claim({ recoveryPointArn: "arn:test:holerun", action: "archive:direct" }, { leaseMs: 60_000, maxAttempts: 3 })
      // Act
      const written = yield* archiveToS3({
        step: claim,
        target: { bucket: settings.artifactBucket, key, contentType: "application/zstd" },
        compression: "zstd",
        partSize,
        uploadConcurrency: 1,
        resumable: true,
        previousUpload: undefined,
        openSource: () => Effect.succeed(source)
      })
      // Assess: every chunk's frame is there; part 1 ends at the first chunk boundary past the part size
      const journal = JSON.parse((yield* readObject(fragmentKey(key, 1))).split("\n")[0] ?? "{}") as { size: number; inputEnd: number }
      assert.strictEqual(written.inputBytes, chunk * (1 + holes))
      assert.strictEqual(written.size, dataFrame.length + holes * zeroFrame.length)
      assert.strictEqual(written.parts, 2)
      assert.strictEqual(journal.size, dataFrame.length + Math.ceil((partSize - dataFrame.length) / zeroFrame.length) * zeroFrame.length)
      assert.strictEqual(journal.inputEnd, chunk * (1 + Math.ceil((partSize - dataFrame.length) / zeroFrame.length)))
    }).pipe(Effect.provide(ledgerLosingTheStep(100)), Effect.provide(streamerLayer()))
  )
})

describe("a new attempt of an archive that cannot resume", () => {
  it.live("aborts the earlier attempt's upload and deletes all of its fragments, also those beyond its own parts", () =>
    Effect.gen(function* () {
      const s3 = yield* S3
      const ledger = yield* Ledger
      const settings = yield* ServiceSettings
      // Prepare: an earlier attempt that recorded three parts (and wrote a fourth fragment) before its worker died
      const key = "archives/ebs/snap-0earlierattempt1/volume/files.tar.zst"
      const target = { bucket: settings.artifactBucket, key, contentType: "application/x-tar+zstd" }
      const earlier = yield* awsCall("s3:CreateMultipartUpload", (abortSignal) =>
        s3.send(new CreateMultipartUploadCommand({ Bucket: settings.artifactBucket, Key: key }), { abortSignal })
      )
      for (const part of [1, 2, 3, 4]) {
        yield* awsCall("s3:PutObject", (abortSignal) =>
          s3.send(new PutObjectCommand({ Bucket: settings.artifactBucket, Key: fragmentKey(key, part), Body: "{}\n" }), { abortSignal })
        )
      }
      const { claim } = yield* ledger.claim({ recoveryPointArn: "arn:test:earlier", action: "archive:volume" }, { leaseMs: 60_000, maxAttempts: 3 })
      // Act: this attempt writes one part, then its manifest
      const written = yield* archiveToS3({
        step: claim,
        target,
        compression: "zstd",
        partSize: 5 * 1024 * 1024,
        resumable: false,
        previousUpload: { bucket: settings.artifactBucket, key, uploadId: earlier.UploadId ?? "", partSize: 5 * 1024 * 1024, partsDone: 3, inputOffset: 15_000_000 },
        openSource: () => toolChunkSource({ command: "head", args: ["-c", "1000000", "/dev/urandom"], limits: STREAMING_TOOL }, { detectHoles: false }, (head) => exitedCleanly(head))
      })
      const fragmentsBeforeManifest = yield* keysUnder(`${key}.parts/`)
      yield* writeManifest({ bucket: settings.artifactBucket, key: `${key}.manifest.ndjson`, header: {}, fragments: [], archives: [{ key, parts: written.parts }] })
      // Assess
      assert.strictEqual(written.parts, 1)
      assert.deepStrictEqual(yield* uploadsUnder(key), [])
      assert.deepStrictEqual(fragmentsBeforeManifest, [fragmentKey(key, 1)])
      assert.deepStrictEqual(yield* keysUnder(`${key}.parts/`), [])
    }).pipe(Effect.provide(ledgerLosingTheStep(100)), Effect.provide(streamerLayer()))
  )
})

describe("a finished archive", () => {
  it.live("leaves no part fragments in volume mode, as a tar of the mounted filesystem", () =>
    Effect.gen(function* () {
      // Prepare: a filesystem whose tar takes two parts
      const image = yield* ext4Image("files", { "data.bin": 12 * 1024 * 1024, "notes.txt": 100 })
      images.set("vol-0files000000001", image)
      const snapshotId = "snap-0files00000001"
      const keys = archiveKeys(snapshotId, "volume", "tar", "zstd")
      // Act
      yield* archiveVolume({
        recoveryPointArn: recoveryPointOf(snapshotId),
        backupVaultName: "vault",
        snapshotId,
        plan,
        mode: "volume",
        restoredVolumeId: "vol-0files000000001"
      })
      // Assess
      const record = yield* (yield* Ledger).get({ recoveryPointArn: recoveryPointOf(snapshotId), action: "archive:volume" })
      assert.strictEqual(record?.status, "succeeded", record?.reason)
      assert.isAtLeast(Number(record?.outcome?.["bytesStored"]), 8 * 1024 * 1024)
      assert.deepStrictEqual(yield* keysUnder(`archives/ebs/${snapshotId}/`), [keys.archive, keys.manifest])
      assert.deepStrictEqual(yield* uploadsUnder(`archives/ebs/${snapshotId}/`), [])
    }).pipe(Effect.provide(streamerLayer()))
  )

  it.live("leaves no part fragments in volume mode, as a raw image of a disk with no filesystem", () =>
    Effect.gen(function* () {
      // Prepare
      const image = join(scratch, "raw.img")
      randomFile(image, 12 * 1024 * 1024)
      images.set("vol-0raw00000000001", image)
      const snapshotId = "snap-0raw0000000001"
      const keys = archiveKeys(snapshotId, "volume", "raw", "zstd")
      // Act
      yield* archiveVolume({ recoveryPointArn: recoveryPointOf(snapshotId), backupVaultName: "vault", snapshotId, plan, mode: "volume", restoredVolumeId: "vol-0raw00000000001" })
      // Assess
      const record = yield* (yield* Ledger).get({ recoveryPointArn: recoveryPointOf(snapshotId), action: "archive:volume" })
      assert.strictEqual(record?.status, "succeeded", record?.reason)
      assert.deepStrictEqual(yield* keysUnder(`archives/ebs/${snapshotId}/`), [keys.archive, keys.manifest])
    }).pipe(Effect.provide(streamerLayer()))
  )

  it.live("leaves no part fragments in direct mode, its manifest assembled from them", () =>
    Effect.gen(function* () {
      // Prepare: a snapshot with 12 MiB of data
      const snapshotId = yield* snapshotOf(randomBytes(12 * 1024 * 1024))
      const keys = archiveKeys(snapshotId, "direct", "raw", "zstd")
      // Act
      yield* archiveDirect({ recoveryPointArn: recoveryPointOf(snapshotId), backupVaultName: "vault", snapshotId, plan: { ...plan, mode: "direct" }, mode: "direct" })
      // Assess: the manifest lists every block with data (24 of 512 KiB), and the fragments it came from are gone
      const record = yield* (yield* Ledger).get({ recoveryPointArn: recoveryPointOf(snapshotId), action: "archive:direct" })
      assert.strictEqual(record?.status, "succeeded", record?.reason)
      assert.deepStrictEqual(yield* keysUnder(`archives/ebs/${snapshotId}/`), [keys.archive, keys.manifest])
      const manifest = (yield* readObject(keys.manifest)).trim().split("\n")
      assert.strictEqual(manifest.length, 1 + 24)
    }).pipe(Effect.provide(streamerLayer()))
  )

  it.live("leaves no part fragments in dump mode", () =>
    Effect.gen(function* () {
      // Prepare: PostgreSQL's tools as stand-ins that list one database and dump two parts' worth of SQL
      const bin = join(scratch, "bin")
      mkdirSync(bin)
      const tool = (name: string, script: string) => {
        writeFileSync(join(bin, name), `#!/bin/sh\n${script}\n`)
        chmodSync(join(bin, name), 0o755)
      }
      tool("psql", `printf 'shop\\t1000\\0'`)
      tool("pg_dump", `if [ "$1" = --version ]; then echo "pg_dump (PostgreSQL) 16.4"; exit 0; fi; head -c 9000000 /dev/urandom | base64`)
      const path = process.env["PATH"] ?? ""
      process.env["PATH"] = `${bin}:${path}`
      const ssm = yield* Ssm
      yield* awsCall("ssm:PutParameter", (abortSignal) =>
        ssm.send(new PutParameterCommand({ Name: "/test/dump-password", Value: "secret", Type: "SecureString" }), { abortSignal })
      )
      const snapshotId = "awsbackup:job-dump0001"
      const keys = dumpKeys(snapshotId, "zstd")
      // Act
      yield* archiveDump({
        recoveryPointArn: `arn:aws:rds:${EMULATOR_REGION}:123456789012:snapshot:${snapshotId}`,
        backupVaultName: "vault",
        snapshotId,
        plan: { ...plan, mode: "dump" },
        database: { instanceId: "ba-dump-0001", engine: "postgres", engineVersion: "16.4", address: "127.0.0.1", port: 5432, user: "dbadmin", passwordParameter: "/test/dump-password" }
      }).pipe(Effect.ensuring(Effect.sync(() => (process.env["PATH"] = path))))
      // Assess
      assert.deepStrictEqual(yield* keysUnder(keys.prefix), [keys.manifest, keys.database("shop")])
      assert.deepStrictEqual(yield* uploadsUnder(keys.prefix), [])
    }).pipe(Effect.provide(streamerLayer()))
  )
})
