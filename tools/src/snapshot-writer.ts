import { createHash } from "node:crypto"
import { closeSync, openSync, readSync, statSync } from "node:fs"
import { CompleteSnapshotCommand, PutSnapshotBlockCommand, StartSnapshotCommand } from "@aws-sdk/client-ebs"
import { Effect } from "effect"
import { Ebs, awsCall } from "@backup-actions/aws"

const BLOCK = 512 * 1024

/**
 * Writes a disk image as an EBS snapshot through the EBS direct APIs (StartSnapshot,
 * PutSnapshotBlock for every block that is not all zeros, CompleteSnapshot), as AWS Backup
 * would have left it. Returns the snapshot id and the volume size in bytes.
 */
export const putImageAsSnapshot = (image: string, description: string) =>
  Effect.gen(function* () {
    const ebs = yield* Ebs
    const bytes = statSync(image).size
    const volumeSizeGiB = Math.max(1, Math.ceil(bytes / 1024 ** 3))
    const started = yield* awsCall("ebs:StartSnapshot", (abortSignal) =>
      ebs.send(new StartSnapshotCommand({ VolumeSize: volumeSizeGiB, Description: description, Timeout: 60 }), { abortSignal })
    )
    const snapshotId = started.SnapshotId ?? ""
    const fd = openSync(image, "r")
    const indices: Array<number> = []
    const zero = Buffer.alloc(BLOCK)
    const probe = Buffer.alloc(BLOCK)
    for (let index = 0; index * BLOCK < bytes; index += 1) {
      probe.fill(0)
      readSync(fd, probe, 0, BLOCK, index * BLOCK)
      if (!probe.equals(zero)) indices.push(index)
    }
    yield* Effect.forEach(
      indices,
      (index) =>
        Effect.gen(function* () {
          const block = Buffer.alloc(BLOCK)
          readSync(fd, block, 0, BLOCK, index * BLOCK)
          const checksum = createHash("sha256").update(block).digest("base64")
          yield* awsCall("ebs:PutSnapshotBlock", (abortSignal) =>
            ebs.send(
              new PutSnapshotBlockCommand({ SnapshotId: snapshotId, BlockIndex: index, BlockData: block, DataLength: BLOCK, Checksum: checksum, ChecksumAlgorithm: "SHA256" }),
              { abortSignal }
            )
          )
        }),
      { concurrency: 8, discard: true }
    ).pipe(Effect.ensuring(Effect.sync(() => closeSync(fd))))
    yield* awsCall("ebs:CompleteSnapshot", (abortSignal) =>
      ebs.send(new CompleteSnapshotCommand({ SnapshotId: snapshotId, ChangedBlocksCount: indices.length }), { abortSignal })
    )
    return { snapshotId, volumeBytes: volumeSizeGiB * 1024 ** 3, blocks: indices.length }
  })
