import { execFileSync } from "node:child_process"
import { randomBytes } from "node:crypto"
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3"
import { Effect } from "effect"
import { S3, awsCall } from "@backup-actions/aws"
import type { ArchivedVolume, DiskLayout } from "@backup-actions/contracts"
import type { Policy } from "@backup-actions/config"
import { sendRecoveryPointCompleted, snapshotArn, waitForStep } from "./backup-events"
import { runCli } from "./cli-process"
import { hasLvm, makeDisk, makeExt4Image, makeExt4NeedingRecovery, makeLogicalVolume, makeTwoPartitionDisk, sha256OfFile, writeSourceTree, type SeededDisk } from "./seed"
import { putImageAsSnapshot } from "./snapshot-writer"
import { startLocalStack, type LocalStack } from "./stack"
import { downloadWithAwsCli, runOn, type StackServices } from "./test-support"
import { treeFacts } from "./tree-compare"

const policy: Policy = {
  rules: [{ name: "volume", match: { resourceTypes: ["EBS"], vaults: ["archive-volume"] }, archive: { mode: "volume", compression: "zstd", deleteSourceAfterVerify: false } }]
}

const MiB = 1024 * 1024

let local: LocalStack
let scratch: string
let stackFile: string
/** The two trees of the two-partition disk, and the bytes of its third partition (no filesystem). */
let firstTree: string
let secondTree: string
let rawPartition: string
let disk: string
let seeded: SeededDisk
/** The volume-mode archive of that disk, as an s3:// URL, and its outcome's locations. */
let archiveUrl: string
let archived: { readonly location: { readonly bucket: string; readonly key: string }; readonly manifest: { readonly bucket: string; readonly key: string } }

const run = <A, E>(effect: Effect.Effect<A, E, StackServices>) => runOn(local, effect)
const cli = (...args: ReadonlyArray<string>) => runCli(stackFile, ...args)

/** Seeds a disk image as a snapshot, archives it in volume mode, and returns the archive step's outcome. */
const archiveDisk = async (image: string, description: string) => {
  const snapshot = await run(putImageAsSnapshot(image, description))
  await run(sendRecoveryPointCompleted({ snapshotId: snapshot.snapshotId, vault: "archive-volume" }))
  const record = await run(waitForStep(local.stack.ledgerTable, snapshotArn(snapshot.snapshotId), "archive:volume"))
  assert.strictEqual(record["status"], "succeeded", String(record["reason"]))
  assert.strictEqual(record["outcome"].format, "tar")
  return record["outcome"]
}

/** Downloads an archive with the AWS CLI and extracts it with stock zstd and GNU tar into a new directory. */
const extractWithStockTools = (location: { readonly bucket: string; readonly key: string }, name: string): string => {
  const archive = join(scratch, `${name}.tar.zst`)
  downloadWithAwsCli(local, location, archive)
  const target = join(scratch, name)
  mkdirSync(target)
  execFileSync("sh", ["-c", 'zstd -dc "$1" | tar -xpf - --numeric-owner -C "$2"', "sh", archive, target])
  return target
}

const manifestHeader = (location: { readonly bucket: string; readonly key: string }, name: string): { readonly layout: DiskLayout } & Record<string, unknown> => {
  const file = join(scratch, `${name}.manifest.ndjson`)
  downloadWithAwsCli(local, location, file)
  return JSON.parse(readFileSync(file, "utf8").split("\n")[0] ?? "{}")
}

const volumeNamed = (layout: DiskLayout, name: string): ArchivedVolume | undefined => layout.volumes.find((volume) => volume.name === name)

/** The same facts for every path of two trees, `lost+found` (made by mkfs) left out of the copy. */
const assertSameTree = (copy: string, source: string): void => {
  const expected = treeFacts(source)
  const actual = treeFacts(copy, ["lost+found"])
  assert.deepStrictEqual([...actual.keys()], [...expected.keys()])
  for (const [path, facts] of expected) assert.deepStrictEqual(actual.get(path), facts, path)
}

/** The first `bytes` of a file. */
const headOf = (file: string, bytes: number): Buffer => {
  const buffer = Buffer.alloc(bytes)
  const fd = openSync(file, "r")
  readSync(fd, buffer, 0, bytes, 0)
  closeSync(fd)
  return buffer
}

beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), "partitions-test-"))
  // Two different trees on two ext4 partitions, and a third partition of random bytes with no filesystem
  firstTree = join(scratch, "first-tree")
  writeSourceTree(firstTree, { largeFileBytes: 2 * MiB, smallFiles: 40 })
  secondTree = join(scratch, "second-tree")
  mkdirSync(join(secondTree, "etc"), { recursive: true })
  writeFileSync(join(secondTree, "etc", "fstab"), "LABEL=second /srv ext4 defaults 0 2\n")
  writeFileSync(join(secondTree, "only-on-the-second-partition.bin"), randomBytes(300_000))
  const firstImage = join(scratch, "first.img")
  const secondImage = join(scratch, "second.img")
  makeExt4Image(firstTree, firstImage, 40)
  makeExt4Image(secondTree, secondImage, 16)
  rawPartition = join(scratch, "raw-partition.bin")
  writeFileSync(rawPartition, Buffer.concat([randomBytes(3 * MiB), Buffer.alloc(MiB), randomBytes(12_345), Buffer.alloc(MiB - 12_345)]))
  disk = join(scratch, "three-partitions.img")
  seeded = makeDisk(disk, [{ image: firstImage, name: "first" }, { image: secondImage, name: "second" }, { image: rawPartition, name: "no-filesystem" }])
  local = await startLocalStack({ name: "partitions-test", policy, services: ["restorer", "streamer"] })
  stackFile = join(scratch, "stack.json")
  writeFileSync(stackFile, JSON.stringify({ endpoint: local.emulator.endpoint, ...local.stack }, null, 2))
  archived = await archiveDisk(disk, "three partitions")
  archiveUrl = `s3://${archived.location.bucket}/${archived.location.key}`
}, 600_000)

afterAll(async () => {
  await local?.stop()
  if (scratch !== undefined) rmSync(scratch, { recursive: true, force: true })
})

describe("volume mode on a partitioned disk", () => {
  it("archives every partition, one directory per filesystem and the partition without one as its exact bytes, readable by stock zstd and tar", () => {
    // Act
    const extracted = extractWithStockTools(archived.location, "three-partitions")
    // Assess: both trees, each in its partition's directory
    assertSameTree(join(extracted, "p1"), firstTree)
    assertSameTree(join(extracted, "p2"), secondTree)
    // Assess: the partition without a filesystem, byte-identical; the disk's head (its partition table) too
    assert.strictEqual(sha256OfFile(join(extracted, "p3.img")), sha256OfFile(rawPartition))
    assert.isTrue(readFileSync(join(extracted, "disk-head.img")).equals(headOf(disk, MiB)))
  })

  it("says in the manifest which partition is which and how it was archived", () => {
    // Act
    const header = manifestHeader(archived.manifest, "three-partitions")
    // Assess
    const { layout } = header
    assert.strictEqual(header["kind"], "backup-actions/file-manifest")
    assert.strictEqual(layout.kind, "volumes")
    assert.strictEqual(layout.partitionTable?.label, "gpt")
    assert.deepStrictEqual(
      layout.volumes.map((volume) => [volume.name, volume.partition?.number, volume.partition?.startBytes, volume.partition?.sizeBytes, volume.partition?.label, volume.filesystem, volume.archivedAs, volume.member]),
      [
        ["p1", 1, seeded.partitions[0]?.startBytes, seeded.partitions[0]?.sizeBytes, "first", "ext4", "files", "p1"],
        ["p2", 2, seeded.partitions[1]?.startBytes, seeded.partitions[1]?.sizeBytes, "second", "ext4", "files", "p2"],
        ["p3", 3, seeded.partitions[2]?.startBytes, seeded.partitions[2]?.sizeBytes, "no-filesystem", undefined, "raw", "p3.img"]
      ]
    )
    assert.strictEqual(volumeNamed(layout, "p1")?.partition?.type, "0FC63DAF-8483-4772-8E79-3D69D8477DE4")
    assert.deepStrictEqual([volumeNamed(layout, "p3")?.rawBytes, volumeNamed(layout, "p3")?.reason], [5 * MiB, "no filesystem"])
  })

  it("restores with backup-actions restore into one directory per partition, every entry checked, and verifies", async () => {
    // Prepare
    const target = join(scratch, "restored")
    // Act
    const restored = await cli("restore", archiveUrl, "--to", target)
    const verified = await cli("verify", archiveUrl)
    // Assess
    assert.strictEqual(restored.status, 0, restored.stderr)
    assert.match(restored.stdout, /every entry matches the manifest/)
    assert.include(restored.stdout, 'p1/: partition 1 "first" (ext4)')
    assert.include(restored.stdout, 'p2/: partition 2 "second" (ext4)')
    assert.include(restored.stdout, `p3.img: partition 3 "no-filesystem" (no filesystem), its exact ${5 * MiB} bytes (no filesystem)`)
    assertSameTree(join(target, "p1"), firstTree)
    assertSameTree(join(target, "p2"), secondTree)
    assert.strictEqual(sha256OfFile(join(target, "p3.img")), sha256OfFile(rawPartition))
    assert.strictEqual(verified.status, 0, verified.stderr)
    assert.match(verified.stdout, /matches its manifest: .* tar entries of 3 partitions and logical volumes/)
  })

  it("fails verify and restore, naming the member, when the manifest's layout does not match the archive", async () => {
    // Prepare: the archive's manifest, its raw range said to be a byte longer (put back afterwards)
    const manifest = { Bucket: archived.manifest.bucket, Key: archived.manifest.key }
    const original = await run(
      Effect.flatMap(S3, (s3) =>
        awsCall("s3:GetObject", async (abortSignal) => {
          const object = await s3.send(new GetObjectCommand(manifest), { abortSignal })
          return (await object.Body?.transformToString()) ?? ""
        })
      )
    )
    const putManifest = (body: string) =>
      run(Effect.flatMap(S3, (s3) => awsCall("s3:PutObject", (abortSignal) => s3.send(new PutObjectCommand({ ...manifest, Body: body }), { abortSignal }))))
    const [first, ...rest] = original.split("\n")
    const header = JSON.parse(first ?? "{}")
    header.layout.volumes = header.layout.volumes.map((volume: ArchivedVolume) => (volume.name === "p3" ? { ...volume, rawBytes: 5 * MiB + 1 } : volume))
    await putManifest([JSON.stringify(header), ...rest].join("\n"))
    try {
      // Act
      const verified = await cli("verify", archiveUrl)
      const restored = await cli("restore", archiveUrl, "--to", join(scratch, "restored-mismatch"))
      // Assess
      assert.strictEqual(verified.status, 1)
      assert.include(verified.stderr, `p3.img: ${5 * MiB} bytes, the manifest's raw range is ${5 * MiB + 1}`)
      assert.strictEqual(restored.status, 1)
      assert.include(restored.stderr, `p3.img: ${5 * MiB} bytes, the manifest's raw range is ${5 * MiB + 1}`)
    } finally {
      await putManifest(original)
    }
  })

  it("replays a partition's journal: a file a crash left only in the ext4 journal is in the archive", async () => {
    // Prepare: a partition copied as a crash leaves it, the journaled file not yet in place
    const tree = join(scratch, "journal-tree")
    mkdirSync(tree)
    writeFileSync(join(tree, "committed-earlier.txt"), "in place\n")
    const image = join(scratch, "needs-recovery.img")
    const journaled = randomBytes(200_000)
    makeExt4NeedingRecovery(tree, image, 16, { path: "journaled.bin", content: journaled })
    assert.include(execFileSync("dumpe2fs", ["-h", image], { stdio: "pipe" }).toString(), "needs_recovery")
    const journalDisk = join(scratch, "journal-disk.img")
    makeTwoPartitionDisk(image, join(scratch, "second.img"), journalDisk)
    // Act
    const outcome = await archiveDisk(journalDisk, "journal needs recovery")
    // Assess
    const extracted = extractWithStockTools(outcome.location, "journal")
    assert.isTrue(readFileSync(join(extracted, "p1", "journaled.bin")).equals(journaled))
    assert.strictEqual(readFileSync(join(extracted, "p1", "committed-earlier.txt"), "utf8"), "in place\n")
    assertSameTree(join(extracted, "p2"), secondTree)
  })

  it.skipIf(!hasLvm())("archives an LVM logical volume on a partition as lvm/<vg>/<lv>, which restores identically", async () => {
    // Prepare: a boot partition, and a partition that is a physical volume of one volume group with one logical volume
    const bootTree = join(scratch, "boot-tree")
    mkdirSync(bootTree)
    writeFileSync(join(bootTree, "vmlinuz"), randomBytes(100_000))
    const lvTree = join(scratch, "lv-tree")
    writeSourceTree(lvTree, { largeFileBytes: MiB, smallFiles: 20 })
    const bootImage = join(scratch, "boot.img")
    const lvImage = join(scratch, "lv.img")
    makeExt4Image(bootTree, bootImage, 8)
    makeExt4Image(lvTree, lvImage, 32)
    const lvmDisk = join(scratch, "lvm-disk.img")
    const layout = makeDisk(lvmDisk, [{ image: bootImage }, { bytes: 48 * MiB, type: "lvm" }])
    const volumeGroup = `bapart${randomBytes(3).toString("hex")}`
    makeLogicalVolume(lvmDisk, layout.partitions[1] ?? { startBytes: 0, sizeBytes: 0 }, { volumeGroup, logicalVolume: "root", image: lvImage })
    // Act
    const outcome = await archiveDisk(lvmDisk, "lvm")
    const url = `s3://${outcome.location.bucket}/${outcome.location.key}`
    const target = join(scratch, "restored-lvm")
    const restored = await cli("restore", url, "--to", target)
    const verified = await cli("verify", url)
    // Assess
    assert.strictEqual(restored.status, 0, restored.stderr)
    assert.include(restored.stdout, `lvm/${volumeGroup}/root/: logical volume ${volumeGroup}/root (ext4)`)
    assert.include(restored.stdout, `partition 2: LVM physical volume of volume group ${volumeGroup}`)
    assertSameTree(join(target, "lvm", volumeGroup, "root"), lvTree)
    assertSameTree(join(target, "p1"), bootTree)
    assert.strictEqual(verified.status, 0, verified.stderr)
    const header = manifestHeader(outcome.manifest, "lvm")
    const logical = volumeNamed(header.layout, `lvm/${volumeGroup}/root`)
    assert.deepStrictEqual([logical?.archivedAs, logical?.logicalVolume?.volumeGroup, logical?.logicalVolume?.name, logical?.filesystem], ["files", volumeGroup, "root", "ext4"])
    assert.deepStrictEqual([volumeNamed(header.layout, "p2")?.archivedAs, volumeNamed(header.layout, "p2")?.volumeGroup], ["lvm", volumeGroup])
  })
})
