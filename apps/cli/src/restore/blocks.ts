import { BlockSet, type RawRange } from "@backup-actions/archive"

/** The size of an EBS snapshot block: what PutSnapshotBlock takes. */
export const EBS_BLOCK_BYTES = 512 * 1024

/** Cuts a stream into fixed-size blocks, in order; the last one zero-padded. */
export async function* blocksOf(content: AsyncIterable<Buffer>, blockBytes: number): AsyncGenerator<{ readonly index: number; readonly data: Buffer }> {
  let block = Buffer.alloc(blockBytes)
  let filled = 0
  let index = 0
  for await (const chunk of content) {
    let at = 0
    while (at < chunk.length) {
      const take = Math.min(blockBytes - filled, chunk.length - at)
      chunk.copy(block, filled, at, at + take)
      filled += take
      at += take
      if (filled === blockBytes) {
        yield { index, data: block }
        index += 1
        block = Buffer.alloc(blockBytes)
        filled = 0
      }
    }
  }
  if (filled > 0) yield { index, data: block }
}

export const isZero = (block: Buffer): boolean => {
  for (let at = 0; at < block.length; at += 8) if (block.readBigUInt64LE(at) !== 0n) return false
  return true
}


/**
 * The EBS blocks a raw image's manifest lists by block index (direct mode: one line per block
 * the source snapshot holds, zeros included), as a set over the image's blocks. Ranges without
 * a block index (an image read from a device) list none: there only blocks with data count.
 */
export const listedBlocks = (ranges: Iterable<RawRange>, imageBytes: number, blockBytes = EBS_BLOCK_BYTES): BlockSet => {
  const listed = new BlockSet(Math.ceil(imageBytes / blockBytes))
  for (const range of ranges) {
    if (range.block === undefined || range.length <= 0) continue
    const last = Math.floor((range.offset + range.length - 1) / blockBytes)
    for (let index = Math.floor(range.offset / blockBytes); index <= last; index += 1) listed.add(index)
  }
  return listed
}
