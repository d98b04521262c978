/**
 * Tar headers for the members the streamer writes itself: byte-exact copies of disk ranges
 * (a partition with no filesystem, the partition table), which GNU tar cannot take from a
 * block device. They are POSIX (pax) entries, as GNU tar's `--format=posix` writes, so the
 * archive stays one stream that stock `tar -x` reads.
 */

const BLOCK = 512

export interface MemberFile {
  readonly path: string
  readonly size: number
  readonly mode: number
  readonly uid: number
  readonly gid: number
  readonly mtimeSeconds: number
}

/** Bytes of zeros after a member's data, up to the next 512-byte block. */
export const paddingAfter = (size: number): number => (BLOCK - (size % BLOCK)) % BLOCK

const writeText = (block: Buffer, at: number, length: number, text: string): void => {
  block.write(text.slice(0, length), at, length, "utf8")
}

/** An octal field (digits, then a NUL), or base-256 (GNU's and star's extension) when the value does not fit. */
const writeNumber = (block: Buffer, at: number, length: number, value: number): void => {
  const octal = Math.floor(value).toString(8)
  if (octal.length <= length - 1) {
    writeText(block, at, length - 1, octal.padStart(length - 1, "0"))
    block[at + length - 1] = 0
    return
  }
  let rest = BigInt(Math.floor(value))
  for (let index = length - 1; index > 0; index -= 1) {
    block[at + index] = Number(rest & 0xffn)
    rest >>= 8n
  }
  block[at] = 0x80
}

/** One ustar header block; its checksum computed over the block with the checksum field as spaces. */
const ustarHeader = (options: {
  readonly name: string
  readonly size: number
  readonly mode: number
  readonly uid: number
  readonly gid: number
  readonly mtimeSeconds: number
  readonly type: string
}): Buffer => {
  const block = Buffer.alloc(BLOCK)
  writeText(block, 0, 100, options.name)
  writeNumber(block, 100, 8, options.mode)
  writeNumber(block, 108, 8, options.uid)
  writeNumber(block, 116, 8, options.gid)
  writeNumber(block, 124, 12, options.size)
  writeNumber(block, 136, 12, options.mtimeSeconds)
  block.fill(0x20, 148, 156)
  writeText(block, 156, 1, options.type)
  writeText(block, 257, 6, "ustar")
  block[262] = 0
  writeText(block, 263, 2, "00")
  writeText(block, 265, 32, options.uid === 0 ? "root" : "")
  writeText(block, 297, 32, options.gid === 0 ? "root" : "")
  let sum = 0
  for (const byte of block) sum += byte
  writeText(block, 148, 6, sum.toString(8).padStart(6, "0"))
  block[154] = 0
  block[155] = 0x20
  return block
}

/** A pax record, `<length> <key>=<value>\n`, whose length counts its own digits. */
const paxRecord = (key: string, value: string): string => {
  const body = ` ${key}=${value}\n`
  const bodyBytes = Buffer.byteLength(body)
  let length = bodyBytes + 1
  while (String(length).length + bodyBytes !== length) length = String(length).length + bodyBytes
  return `${length}${body}`
}

/**
 * The header of a regular file: a pax extended header that carries its exact path and size
 * (no length limit on either), then its ustar header. Its data follows, then `paddingAfter`.
 */
export const regularFileHeader = (file: MemberFile): Buffer => {
  const records = Buffer.from(paxRecord("path", file.path) + paxRecord("size", String(file.size)) + paxRecord("mtime", String(file.mtimeSeconds)))
  const base = file.path.split("/").at(-1) ?? file.path
  const ascii = (text: string) => text.replace(/[^\x20-\x7e]/g, "_")
  const common = { mode: file.mode, uid: file.uid, gid: file.gid, mtimeSeconds: file.mtimeSeconds }
  return Buffer.concat([
    ustarHeader({ ...common, name: ascii(`PaxHeaders/${base}`).slice(0, 99), size: records.length, mode: 0o644, type: "x" }),
    records,
    Buffer.alloc(paddingAfter(records.length)),
    ustarHeader({ ...common, name: ascii(file.path).slice(0, 99), size: file.size, type: "0" })
  ])
}
