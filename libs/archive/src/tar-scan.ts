import { createHash, type Hash } from "node:crypto"

/** What a tar archive says about one entry. */
export interface TarEntry {
  readonly path: string
  readonly type: "file" | "directory" | "symlink" | "hardlink" | "other"
  readonly mode: number
  readonly uid: number
  readonly gid: number
  /** A regular file's size (its real size when stored sparse). */
  readonly size: number
  readonly mtimeSeconds: number
  /** The modification time in whole milliseconds, as exact as the archive holds it (pax keeps nanoseconds). */
  readonly mtimeMs: number
  /** Hex SHA-256 of a regular file's content. */
  readonly sha256?: string
  /** A symlink's target, or the path a hard link points at. */
  readonly linkTarget?: string
  /**
   * Where the entry starts in the tar: its first header block (a pax or GNU long-name header
   * before its own), from which a reader of the tar alone finds the whole entry.
   */
  readonly headerOffset: number
}

/** The archive is not a tar this scanner can read; says where. */
export class TarFormatError extends Error {}

const BLOCK = 512
const ZEROS = Buffer.alloc(1024 * 1024)

/** A tar path as the manifest writes it: no leading "./", no trailing "/", the root as ".". */
export const normalizeTarPath = (path: string): string => {
  const trimmed = path.replace(/^(\.\/)+/, "").replace(/\/+$/, "")
  return trimmed === "" || trimmed === "." ? "." : trimmed
}

const text = (block: Buffer, start: number, length: number): string => {
  const field = block.subarray(start, start + length)
  const end = field.indexOf(0)
  return field.toString("utf8", 0, end < 0 ? field.length : end)
}

/** A numeric header field: octal text, or base-256 when its first byte has the high bit set. */
const numeric = (block: Buffer, start: number, length: number): number => {
  const first = block[start] ?? 0
  if ((first & 0x80) !== 0) {
    let value = first & 0x7f
    for (let index = 1; index < length; index += 1) value = value * 256 + (block[start + index] ?? 0)
    return value
  }
  const digits = text(block, start, length).trim()
  return digits === "" ? 0 : Number.parseInt(digits, 8)
}

const checksumOf = (block: Buffer): number => {
  let sum = 0
  for (let index = 0; index < BLOCK; index += 1) sum += index >= 148 && index < 156 ? 32 : (block[index] ?? 0)
  return sum
}

/** `length key=value\n` records of a pax extended header. */
export const parsePaxRecords = (data: Buffer): Map<string, string> => {
  const records = new Map<string, string>()
  let at = 0
  while (at < data.length) {
    const space = data.indexOf(0x20, at)
    if (space < 0) break
    const length = Number.parseInt(data.toString("utf8", at, space), 10)
    if (!Number.isFinite(length) || length <= 0) break
    const record = data.toString("utf8", space + 1, at + length - 1)
    const equals = record.indexOf("=")
    if (equals > 0) records.set(record.slice(0, equals), record.slice(equals + 1))
    at += length
  }
  return records
}

interface Segment {
  readonly offset: number
  readonly size: number
}

/** Hashes a sparse file from its stored segments, filling the holes with zeros. */
class SparseHasher {
  private position = 0
  private index = 0
  constructor(
    private readonly hash: Hash,
    private readonly segments: ReadonlyArray<Segment>,
    private readonly realSize: number
  ) {}

  private zeros(count: number): void {
    for (let left = count; left > 0; left -= ZEROS.length) this.hash.update(ZEROS.subarray(0, Math.min(left, ZEROS.length)))
    this.position += count
  }

  update(bytes: Buffer): void {
    let at = 0
    while (at < bytes.length) {
      const segment = this.segments[this.index]
      if (segment === undefined) throw new TarFormatError("a sparse file stores more data than its map lists")
      if (this.position < segment.offset) this.zeros(segment.offset - this.position)
      const take = Math.min(bytes.length - at, segment.offset + segment.size - this.position)
      this.hash.update(bytes.subarray(at, at + take))
      this.position += take
      at += take
      if (this.position >= segment.offset + segment.size) this.index += 1
    }
  }

  finish(): void {
    if (this.position < this.realSize) this.zeros(this.realSize - this.position)
  }
}

type State =
  | { readonly kind: "header" }
  | { readonly kind: "meta"; readonly flag: string; remaining: number; readonly chunks: Array<Buffer>; readonly padding: number }
  | { readonly kind: "sparse-map"; remaining: number; readonly chunks: Array<Buffer>; readonly entry: PendingFile }
  | { readonly kind: "data"; remaining: number; readonly padding: number; readonly entry: PendingFile }
  | { readonly kind: "skip"; remaining: number }
  | { readonly kind: "end" }

interface PendingFile {
  readonly base: Omit<TarEntry, "sha256">
  readonly hash: Hash
  sparse: SparseHasher | undefined
}

const paddingOf = (size: number): number => (BLOCK - (size % BLOCK)) % BLOCK

/**
 * A pax time ("seconds[.fraction]") in whole milliseconds, cut as a JavaScript Date cuts a
 * file's time: exactly, from the digits, where a double would round the nanoseconds up.
 */
export const paxTimeMs = (value: string): number => {
  const match = /^(-?)(\d+)(?:\.(\d*))?$/.exec(value.trim())
  if (match === null) return Math.trunc(Number(value) * 1000)
  const millis = Number(match[2]) * 1000 + Number((match[3] ?? "").slice(0, 3).padEnd(3, "0"))
  return match[1] === "-" ? -millis : millis
}

/**
 * A push parser for the tars the streamer writes (GNU tar, POSIX format, PAX sparse 1.0 and
 * 0.1, GNU long names): fed the archive in order, it reports every entry with the SHA-256 of
 * each regular file's content. Only one header and a sparse map are ever held in memory.
 */
export class TarScanner {
  private state: State = { kind: "header" }
  private pending: Buffer = Buffer.alloc(0)
  private offset = 0
  private pax = new Map<string, string>()
  private longName: string | undefined
  private longLink: string | undefined
  /** Where the headers of the entry being read began, once a pax or long-name header came first. */
  private entryStart: number | undefined

  constructor(private readonly onEntry: (entry: TarEntry) => void) {}

  get ended(): boolean {
    return this.state.kind === "end"
  }

  /** Takes bytes until `count` are gathered in `pending`; returns them or undefined. */
  private gather(chunk: Buffer, at: number, count: number): { readonly taken: number; readonly bytes: Buffer | undefined } {
    const need = count - this.pending.length
    const taken = Math.min(need, chunk.length - at)
    this.pending = Buffer.concat([this.pending, chunk.subarray(at, at + taken)])
    if (this.pending.length < count) return { taken, bytes: undefined }
    const bytes = this.pending
    this.pending = Buffer.alloc(0)
    return { taken, bytes }
  }

  push(chunk: Buffer): void {
    let at = 0
    while (at < chunk.length) {
      const state = this.state
      switch (state.kind) {
        case "end":
          return
        case "header": {
          const { taken, bytes } = this.gather(chunk, at, BLOCK)
          at += taken
          if (bytes !== undefined) {
            this.header(bytes)
            this.offset += BLOCK
          }
          break
        }
        case "skip": {
          const taken = Math.min(state.remaining, chunk.length - at)
          state.remaining -= taken
          at += taken
          this.offset += taken
          if (state.remaining === 0) this.state = { kind: "header" }
          break
        }
        case "meta": {
          const taken = Math.min(state.remaining, chunk.length - at)
          state.chunks.push(chunk.subarray(at, at + taken))
          state.remaining -= taken
          at += taken
          this.offset += taken
          if (state.remaining === 0) {
            this.meta(state.flag, Buffer.concat(state.chunks))
            this.state = state.padding === 0 ? { kind: "header" } : { kind: "skip", remaining: state.padding }
          }
          break
        }
        case "sparse-map": {
          const { taken, bytes } = this.gather(chunk, at, BLOCK)
          at += taken
          if (bytes === undefined) break
          this.offset += BLOCK
          state.chunks.push(bytes)
          state.remaining -= BLOCK
          const segments = this.sparseMap(Buffer.concat(state.chunks))
          if (segments !== undefined) {
            state.entry.sparse = new SparseHasher(state.entry.hash, segments, state.entry.base.size)
            this.state = { kind: "data", remaining: state.remaining, padding: paddingOf(state.remaining), entry: state.entry }
            if (state.remaining === 0) this.finishFile(state.entry, 0)
          } else if (state.remaining <= 0) {
            throw new TarFormatError(`the sparse map of ${state.entry.base.path} does not end within its data`)
          }
          break
        }
        case "data": {
          const taken = Math.min(state.remaining, chunk.length - at)
          const bytes = chunk.subarray(at, at + taken)
          if (state.entry.sparse !== undefined) state.entry.sparse.update(bytes)
          else state.entry.hash.update(bytes)
          state.remaining -= taken
          at += taken
          this.offset += taken
          if (state.remaining === 0) this.finishFile(state.entry, state.padding)
          break
        }
      }
    }
  }

  /** The end of the input: the archive must have ended (two zero blocks) or at least not mid-entry. */
  end(): void {
    if (this.state.kind === "end") return
    if (this.state.kind === "header" && this.pending.length === 0) return
    throw new TarFormatError(`the archive ends in the middle of an entry (at tar byte ${this.offset})`)
  }

  private finishFile(entry: PendingFile, padding: number): void {
    entry.sparse?.finish()
    this.onEntry({ ...entry.base, sha256: entry.hash.digest("hex") })
    this.state = padding === 0 ? { kind: "header" } : { kind: "skip", remaining: padding }
  }

  private sparseMap(data: Buffer): ReadonlyArray<Segment> | undefined {
    const numbers: Array<number> = []
    let start = 0
    for (let index = 0; index < data.length; index += 1) {
      if (data[index] !== 0x0a) continue
      numbers.push(Number.parseInt(data.toString("ascii", start, index), 10))
      start = index + 1
      const count = numbers[0] ?? 0
      if (numbers.length === 1 + count * 2) {
        return Array.from({ length: count }, (_, segment) => ({ offset: numbers[1 + segment * 2] ?? 0, size: numbers[2 + segment * 2] ?? 0 }))
      }
    }
    return undefined
  }

  private meta(flag: string, data: Buffer): void {
    if (flag === "x") for (const [key, value] of parsePaxRecords(data)) this.pax.set(key, value)
    else if (flag === "L") this.longName = text(data, 0, data.length)
    else if (flag === "K") this.longLink = text(data, 0, data.length)
  }

  private header(block: Buffer): void {
    if (block.every((byte) => byte === 0)) {
      this.state = { kind: "end" }
      return
    }
    const stored = numeric(block, 148, 8)
    if (stored !== checksumOf(block)) throw new TarFormatError(`the tar header at tar byte ${this.offset} has a bad checksum`)
    const flag = String.fromCharCode(block[156] ?? 0)
    const size = numeric(block, 124, 12)
    if (flag === "x" || flag === "L" || flag === "K") this.entryStart ??= this.offset
    if (flag === "x" || flag === "g" || flag === "L" || flag === "K") {
      // Global pax records apply to every later entry; the streamer's tars have none that matter here.
      this.state = flag === "g" ? { kind: "skip", remaining: size + paddingOf(size) } : { kind: "meta", flag, remaining: size, chunks: [], padding: paddingOf(size) }
      if (this.state.kind === "skip" && this.state.remaining === 0) this.state = { kind: "header" }
      if (this.state.kind === "meta" && size === 0) this.state = { kind: "header" }
      return
    }
    if (flag === "S") throw new TarFormatError(`old GNU sparse entries are not supported (tar byte ${this.offset})`)
    const magic = text(block, 257, 6)
    const prefix = magic.startsWith("ustar") ? text(block, 345, 155) : ""
    const headerName = prefix === "" ? text(block, 0, 100) : `${prefix}/${text(block, 0, 100)}`
    const pax = this.pax
    this.pax = new Map()
    const rawName = pax.get("GNU.sparse.name") ?? pax.get("path") ?? this.longName ?? headerName
    const linkTarget = pax.get("linkpath") ?? this.longLink ?? text(block, 157, 100)
    this.longName = undefined
    this.longLink = undefined
    const storedSize = pax.has("size") ? Number(pax.get("size")) : size
    const sparseMajor = pax.get("GNU.sparse.major")
    const realSize = Number(pax.get("GNU.sparse.realsize") ?? pax.get("GNU.sparse.size") ?? storedSize)
    const type: TarEntry["type"] =
      flag === "0" || flag === "\0" || flag === "7"
        ? "file"
        : flag === "1"
          ? "hardlink"
          : flag === "2"
            ? "symlink"
            : flag === "5"
              ? "directory"
              : "other"
    const headerOffset = this.entryStart ?? this.offset
    this.entryStart = undefined
    const paxTime = pax.get("mtime")
    const mtimeMs = paxTime === undefined ? numeric(block, 136, 12) * 1000 : paxTimeMs(paxTime)
    const base = {
      path: normalizeTarPath(rawName),
      type,
      mode: numeric(block, 100, 8) & 0o7777,
      uid: pax.has("uid") ? Number(pax.get("uid")) : numeric(block, 108, 8),
      gid: pax.has("gid") ? Number(pax.get("gid")) : numeric(block, 116, 8),
      size: type === "file" ? realSize : 0,
      mtimeSeconds: Math.floor(mtimeMs / 1000),
      mtimeMs,
      headerOffset,
      ...(type === "symlink" || type === "hardlink" ? { linkTarget: type === "hardlink" ? normalizeTarPath(linkTarget) : linkTarget } : {})
    }
    if (type !== "file") {
      this.onEntry(base)
      this.state = storedSize === 0 ? { kind: "header" } : { kind: "skip", remaining: storedSize + paddingOf(storedSize) }
      return
    }
    const entry: PendingFile = { base, hash: createHash("sha256"), sparse: undefined }
    if (sparseMajor === "1") {
      this.state = { kind: "sparse-map", remaining: storedSize, chunks: [], entry }
      return
    }
    const map = pax.get("GNU.sparse.map")
    if (map !== undefined) {
      const numbers = map.split(",").map(Number)
      const segments = Array.from({ length: Math.floor(numbers.length / 2) }, (_, index) => ({ offset: numbers[index * 2] ?? 0, size: numbers[index * 2 + 1] ?? 0 }))
      entry.sparse = new SparseHasher(entry.hash, segments, realSize)
    } else if (pax.has("GNU.sparse.offset")) {
      throw new TarFormatError(`${base.path} is stored in PAX sparse format 0.0, which this CLI does not read`)
    }
    this.state = { kind: "data", remaining: storedSize, padding: paddingOf(storedSize), entry }
    if (storedSize === 0) this.finishFile(entry, 0)
  }
}
