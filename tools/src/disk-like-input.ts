import { randomBytes } from "node:crypto"
import { closeSync, openSync, writeSync } from "node:fs"

const MiB = 1024 * 1024

/** Disk-like data: half text, three tenths random, a fifth zeros, in 8 MiB stretches. */
export const writeDiskLikeInput = (path: string, bytes: number): void => {
  const words = ["backup", "volume", "snapshot", "archive", "restore", "ledger", "event", "bucket", "region", "policy", "checksum", "stream"]
  const texts = [0, 1, 2, 3].map((seed) => {
    let state = seed + 1
    const parts: Array<string> = []
    let length = 0
    while (length < 8 * MiB) {
      state = (Math.imul(state, 1664525) + 1013904223) >>> 0
      const word = `${words[state % words.length] ?? "x"}${state % 11 === 0 ? `-${state % 997}\n` : " "}`
      parts.push(word)
      length += word.length
    }
    return Buffer.from(parts.join("")).subarray(0, 8 * MiB)
  })
  const zeros = Buffer.alloc(8 * MiB)
  const fd = openSync(path, "w")
  for (let stretch = 0; stretch * 8 * MiB < bytes; stretch += 1) {
    const kind = stretch % 10
    const block = kind < 5 ? (texts[stretch % texts.length] ?? zeros) : kind < 8 ? randomBytes(8 * MiB) : zeros
    writeSync(fd, block)
  }
  closeSync(fd)
}
