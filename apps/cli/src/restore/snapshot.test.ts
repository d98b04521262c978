import { createHash, randomBytes } from "node:crypto"
import { Readable } from "node:stream"
import { gzipSync } from "node:zlib"
import { assert, describe, it } from "@effect/vitest"
import {
  CompleteSnapshotCommand,
  EBSClient,
  GetSnapshotBlockCommand,
  ListSnapshotBlocksCommand,
  PutSnapshotBlockCommand,
  StartSnapshotCommand
} from "@aws-sdk/client-ebs"
import { DeleteSnapshotCommand, DescribeSnapshotsCommand, EC2Client } from "@aws-sdk/client-ec2"
import { DescribeKeyCommand, KMSClient } from "@aws-sdk/client-kms"
import { GetObjectCommand, HeadObjectCommand, S3Client } from "@aws-sdk/client-s3"
import { mockClient } from "aws-sdk-client-mock"
import { Effect, Layer } from "effect"
import { Ebs, Ec2, Kms, S3 } from "@backup-actions/aws"
import { Progress } from "../progress"
import { EBS_BLOCK_BYTES } from "./blocks"
import { restoreToSnapshot } from "./snapshot"

const ARCHIVE = { bucket: "artifacts", key: "archives/ebs/snap-source/direct/disk.img.gz" }
const MANIFEST_KEY = "archives/ebs/snap-source/direct/manifest.ndjson"
const SOURCE_KEY = "arn:aws:kms:us-east-1:123456789012:key/source-key"
const sha256 = (data: Buffer) => createHash("sha256").update(data).digest("base64")

/**
 * A four-block image: data, a block the source wrote with zeros (listed), a hole (not listed),
 * data. Its archive (gzip, one part) and its manifest, with or without block indexes and source.
 */
const fixture = (options: { readonly source?: Record<string, unknown>; readonly blockIndexes?: boolean } = {}) => {
  const blocks = [randomBytes(EBS_BLOCK_BYTES), Buffer.alloc(EBS_BLOCK_BYTES), Buffer.alloc(EBS_BLOCK_BYTES), randomBytes(EBS_BLOCK_BYTES)]
  const archive = gzipSync(Buffer.concat(blocks))
  const composite = `${createHash("sha256").update(createHash("sha256").update(archive).digest()).digest("base64")}-1`
  const header = {
    kind: "backup-actions/raw-image-manifest",
    version: 1,
    archive: ARCHIVE.key,
    compression: "gzip",
    imageBytes: 4 * EBS_BLOCK_BYTES,
    blockSize: EBS_BLOCK_BYTES,
    archiveBytes: archive.length,
    checksum: { algorithm: "SHA256", type: "COMPOSITE", value: composite },
    ...(options.source === undefined ? {} : { source: options.source })
  }
  const lines = [0, 1, 3].map((index) => ({
    ...(options.blockIndexes === false ? {} : { block: index }),
    offset: index * EBS_BLOCK_BYTES,
    length: EBS_BLOCK_BYTES,
    sha256: sha256(blocks[index] ?? Buffer.alloc(0))
  }))
  return { blocks, archive, manifest: [header, ...lines].map((line) => JSON.stringify(line)).join("\n") + "\n" }
}

/** A body as the SDK answers one: a Node.js stream that can also be read whole. */
const body = (data: Buffer) =>
  Object.assign(Readable.from([data]), { transformToByteArray: async () => new Uint8Array(data), transformToString: async () => data.toString() })

/** Clients over the fixture: S3 serves it, EBS keeps what is put and lists it back (less the blocks `unlisted`). */
const mocked = (files: ReturnType<typeof fixture>, options: { readonly unlisted?: ReadonlyArray<number> } = {}) => {
  const clients = { s3: new S3Client({ region: "us-east-1" }), ebs: new EBSClient({ region: "us-east-1" }), ec2: new EC2Client({ region: "us-east-1" }), kms: new KMSClient({ region: "us-east-1" }) }
  const s3 = mockClient(clients.s3)
  const ebs = mockClient(clients.ebs)
  const ec2 = mockClient(clients.ec2)
  const kms = mockClient(clients.kms)
  s3.on(HeadObjectCommand).resolves({ ContentLength: files.archive.length, PartsCount: 1, ETag: '"etag"' })
  s3.on(GetObjectCommand, { Key: MANIFEST_KEY }).callsFake(async () => ({ Body: body(Buffer.from(files.manifest)) }))
  s3.on(GetObjectCommand, { Key: ARCHIVE.key }).callsFake(async () => ({ Body: body(files.archive) }))
  const stored = new Map<number, Buffer>()
  ebs.on(StartSnapshotCommand).resolves({ SnapshotId: "snap-restored", Status: "pending" })
  ebs.on(PutSnapshotBlockCommand).callsFake(async (input: { BlockIndex: number; BlockData: Buffer }) => {
    stored.set(input.BlockIndex, Buffer.from(input.BlockData))
    return { Checksum: sha256(input.BlockData), ChecksumAlgorithm: "SHA256" }
  })
  ebs.on(CompleteSnapshotCommand).resolves({ Status: "completed" })
  ebs.on(ListSnapshotBlocksCommand).callsFake(async () => ({
    Blocks: [...stored.keys()].filter((index) => !(options.unlisted ?? []).includes(index)).map((index) => ({ BlockIndex: index, BlockToken: `token-${index}` })),
    BlockSize: EBS_BLOCK_BYTES
  }))
  ebs.on(GetSnapshotBlockCommand).callsFake(async (input: { BlockIndex: number }) => {
    const data = stored.get(input.BlockIndex) ?? Buffer.alloc(EBS_BLOCK_BYTES)
    return { BlockData: body(data), DataLength: data.length, Checksum: sha256(data), ChecksumAlgorithm: "SHA256" }
  })
  ec2.on(DescribeSnapshotsCommand).resolves({ Snapshots: [{ SnapshotId: "snap-restored", State: "completed" }] })
  ec2.on(DeleteSnapshotCommand).resolves({})
  kms.on(DescribeKeyCommand).resolves({ KeyMetadata: { KeyId: "named-key", Arn: "arn:aws:kms:us-east-1:123456789012:key/named-key" } })
  const layer = Layer.mergeAll(
    Layer.succeed(S3, clients.s3),
    Layer.succeed(Ebs, clients.ebs),
    Layer.succeed(Ec2, clients.ec2),
    Layer.succeed(Kms, clients.kms),
    Progress.silent
  )
  return { s3, ebs, ec2, kms, layer, stored }
}

const putIndexes = (ebs: ReturnType<typeof mocked>["ebs"]) =>
  ebs
    .commandCalls(PutSnapshotBlockCommand)
    .map((call) => call.args[0].input.BlockIndex ?? -1)
    .sort((left, right) => left - right)

describe("restoring a raw image to a snapshot", () => {
  it.effect("encrypts the new snapshot with the source's key at the source's size, and writes the block the source wrote with zeros", () =>
    Effect.gen(function* () {
      // Prepare
      const files = fixture({ source: { snapshotId: "snap-source", volumeSize: 8, encrypted: true, kmsKeyId: SOURCE_KEY } })
      const { ebs, kms, layer, stored } = mocked(files)
      // Act
      const restored = yield* restoreToSnapshot(ARCHIVE).pipe(Effect.provide(layer))
      // Assess
      const started = ebs.commandCalls(StartSnapshotCommand)[0]?.args[0].input
      assert.deepStrictEqual({ ...started, ClientToken: "" }, {
        VolumeSize: 8,
        Description: "restored from s3://artifacts/archives/ebs/snap-source/direct/disk.img.gz",
        Tags: [{ Key: "backup-actions:restored-from", Value: "s3://artifacts/archives/ebs/snap-source/direct/disk.img.gz" }],
        ClientToken: "",
        Timeout: 60,
        Encrypted: true,
        KmsKeyArn: SOURCE_KEY
      })
      assert.deepStrictEqual(putIndexes(ebs), [0, 1, 3])
      assert.isTrue(stored.get(1)?.equals(Buffer.alloc(EBS_BLOCK_BYTES)))
      assert.strictEqual(ebs.commandCalls(CompleteSnapshotCommand)[0]?.args[0].input.ChangedBlocksCount, 3)
      assert.strictEqual(kms.commandCalls(DescribeKeyCommand).length, 0)
      assert.deepStrictEqual(restored, { snapshotId: "snap-restored", blocksWritten: 3, bytes: 4 * EBS_BLOCK_BYTES, encrypted: true, kmsKeyArn: SOURCE_KEY })
    })
  )

  it.effect("encrypts with the key --kms-key names, resolved to its ARN, over the source's", () =>
    Effect.gen(function* () {
      // Prepare
      const files = fixture({ source: { snapshotId: "snap-source", volumeSize: 8, encrypted: true, kmsKeyId: SOURCE_KEY } })
      const { ebs, kms, layer } = mocked(files)
      // Act
      const restored = yield* restoreToSnapshot(ARCHIVE, { kmsKeyId: "alias/restores" }).pipe(Effect.provide(layer))
      // Assess
      assert.deepStrictEqual(kms.commandCalls(DescribeKeyCommand)[0]?.args[0].input, { KeyId: "alias/restores" })
      const started = ebs.commandCalls(StartSnapshotCommand)[0]?.args[0].input
      assert.strictEqual(started?.Encrypted, true)
      assert.strictEqual(started?.KmsKeyArn, "arn:aws:kms:us-east-1:123456789012:key/named-key")
      assert.strictEqual(restored.kmsKeyArn, "arn:aws:kms:us-east-1:123456789012:key/named-key")
    })
  )

  it.effect("encrypts an unencrypted source's copy when a key ARN is named, without asking KMS", () =>
    Effect.gen(function* () {
      // Prepare
      const files = fixture({ source: { snapshotId: "snap-source", volumeSize: 8, encrypted: false } })
      const { ebs, kms, layer } = mocked(files)
      // Act
      yield* restoreToSnapshot(ARCHIVE, { kmsKeyId: SOURCE_KEY }).pipe(Effect.provide(layer))
      // Assess
      const started = ebs.commandCalls(StartSnapshotCommand)[0]?.args[0].input
      assert.deepStrictEqual([started?.Encrypted, started?.KmsKeyArn], [true, SOURCE_KEY])
      assert.strictEqual(kms.commandCalls(DescribeKeyCommand).length, 0)
    })
  )

  it.effect("makes an unencrypted snapshot sized by the image from a manifest without a source, writing only blocks with data when none is listed by index", () =>
    Effect.gen(function* () {
      // Prepare: an image read from a device lists ranges, not blocks
      const files = fixture({ blockIndexes: false })
      const { ebs, layer } = mocked(files)
      // Act
      const restored = yield* restoreToSnapshot(ARCHIVE).pipe(Effect.provide(layer))
      // Assess
      const started = ebs.commandCalls(StartSnapshotCommand)[0]?.args[0].input
      assert.strictEqual(started?.VolumeSize, 1)
      assert.isUndefined(started?.Encrypted)
      assert.isUndefined(started?.KmsKeyArn)
      assert.deepStrictEqual(putIndexes(ebs), [0, 3])
      assert.deepStrictEqual([restored.blocksWritten, restored.encrypted], [2, false])
    })
  )

  it.effect("fails naming a written block that the new snapshot does not list, and deletes the snapshot", () =>
    Effect.gen(function* () {
      // Prepare: EBS lists every block put but the zero block
      const files = fixture({ source: { snapshotId: "snap-source", volumeSize: 1, encrypted: false } })
      const { ec2, layer } = mocked(files, { unlisted: [1] })
      // Act
      const error = yield* Effect.flip(restoreToSnapshot(ARCHIVE).pipe(Effect.provide(layer)))
      // Assess
      assert.strictEqual(error._tag, "CheckFailed")
      if (error._tag === "CheckFailed") {
        assert.strictEqual(error.summary, "snapshot snap-restored does not read back as the manifest says; it was deleted:")
        assert.deepStrictEqual(error.problems, ["1 blocks written to snap-restored are missing from its block list: 1"])
      }
      assert.deepStrictEqual(ec2.commandCalls(DeleteSnapshotCommand).map((call) => call.args[0].input), [{ SnapshotId: "snap-restored" }])
    })
  )

  it.effect("deletes the snapshot it started when an EBS call fails midway", () =>
    Effect.gen(function* () {
      // Prepare
      const files = fixture({ source: { snapshotId: "snap-source", volumeSize: 1, encrypted: false } })
      const { ebs, ec2, layer } = mocked(files)
      ebs.on(CompleteSnapshotCommand).rejects(Object.assign(new Error("denied"), { name: "AccessDeniedException", $metadata: { httpStatusCode: 403 } }))
      // Act
      const error = yield* Effect.flip(restoreToSnapshot(ARCHIVE).pipe(Effect.provide(layer)))
      // Assess
      assert.strictEqual(error._tag, "AwsError")
      assert.deepStrictEqual(ec2.commandCalls(DeleteSnapshotCommand).map((call) => call.args[0].input), [{ SnapshotId: "snap-restored" }])
    })
  )
})
