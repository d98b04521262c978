import { createHash } from "node:crypto"
import { CompleteSnapshotCommand, GetSnapshotBlockCommand, ListSnapshotBlocksCommand, PutSnapshotBlockCommand, StartSnapshotCommand } from "@aws-sdk/client-ebs"
import { Effect } from "effect"
import { Ebs, awsCall } from "@backup-actions/aws"

/** EBS's block size for the direct APIs. */
export const EBS_BLOCK = 512 * 1024

/**
 * A 1 GiB snapshot written through the EBS direct APIs with the given blocks only (a block of
 * zeros given is written, so EBS lists it); returns its id.
 */
export const putBlocksAsSnapshot = (blocks: ReadonlyMap<number, Buffer>, description: string) =>
  Effect.gen(function* () {
    const ebs = yield* Ebs
    const started = yield* awsCall("ebs:StartSnapshot", (abortSignal) => ebs.send(new StartSnapshotCommand({ VolumeSize: 1, Description: description, Timeout: 60 }), { abortSignal }))
    const snapshotId = started.SnapshotId ?? ""
    yield* Effect.forEach(
      blocks,
      ([index, data]) =>
        awsCall("ebs:PutSnapshotBlock", (abortSignal) =>
          ebs.send(
            new PutSnapshotBlockCommand({
              SnapshotId: snapshotId,
              BlockIndex: index,
              BlockData: data,
              DataLength: EBS_BLOCK,
              Checksum: createHash("sha256").update(data).digest("base64"),
              ChecksumAlgorithm: "SHA256"
            }),
            { abortSignal }
          )
        ),
      { concurrency: 4, discard: true }
    )
    yield* awsCall("ebs:CompleteSnapshot", (abortSignal) => ebs.send(new CompleteSnapshotCommand({ SnapshotId: snapshotId, ChangedBlocksCount: blocks.size }), { abortSignal }))
    return snapshotId
  })

/** Every block a snapshot lists, as EBS returns it: [index, SHA-256 (hex) of its bytes], by index. */
export const snapshotBlockDigests = (snapshotId: string) =>
  Effect.gen(function* () {
    const ebs = yield* Ebs
    const listed = yield* awsCall("ebs:ListSnapshotBlocks", (abortSignal) => ebs.send(new ListSnapshotBlocksCommand({ SnapshotId: snapshotId }), { abortSignal }))
    const blocks = yield* Effect.forEach(
      listed.Blocks ?? [],
      (block) =>
        awsCall("ebs:GetSnapshotBlock", async (abortSignal) => {
          const answer = await ebs.send(new GetSnapshotBlockCommand({ SnapshotId: snapshotId, BlockIndex: block.BlockIndex, BlockToken: block.BlockToken }), { abortSignal })
          const bytes = (await answer.BlockData?.transformToByteArray()) ?? new Uint8Array(0)
          return [block.BlockIndex ?? -1, createHash("sha256").update(bytes).digest("hex")] as const
        }),
      { concurrency: 8 }
    )
    return [...blocks].sort((left, right) => left[0] - right[0])
  })
