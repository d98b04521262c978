import { lstat, readlink } from "node:fs/promises"
import { join } from "node:path"
import { rawMembersOf, sha256OfFile, type ArchivedVolume, type DiskLayout } from "@backup-actions/contracts"
import type { TreeEntry } from "./manifest"
import type { TarEntry } from "./tar-scan"

/** What was found for one path, in an archive or on disk. */
export interface FoundEntry {
  readonly type: "file" | "directory" | "symlink" | "other"
  readonly mode: number
  readonly uid: number
  readonly gid: number
  readonly size: number
  readonly mtimeSeconds: number
  readonly sha256?: string | undefined
  readonly target?: string | undefined
}

/** Keeps the first problems and counts the rest, so that a badly broken archive still gives a short message. */
export class ProblemList {
  private readonly kept: Array<string> = []
  private dropped = 0
  constructor(private readonly limit = 30) {}
  add(problem: string): void {
    if (this.kept.length < this.limit) this.kept.push(problem)
    else this.dropped += 1
  }
  addAll(problems: ReadonlyArray<string>): void {
    for (const problem of problems) this.add(problem)
  }
  get size(): number {
    return this.kept.length + this.dropped
  }
  toArray(): ReadonlyArray<string> {
    return this.dropped === 0 ? [...this.kept] : [...this.kept, `and ${this.dropped} more differences`]
  }
}

const octal = (mode: number): string => mode.toString(8).padStart(4, "0")

/**
 * How one entry differs from its manifest line: type, mode, owner, and for a regular file its
 * size, modification second and SHA-256, for a symlink its target. An empty list means equal.
 */
export const compareEntry = (expected: TreeEntry, found: FoundEntry | undefined, options: { readonly owners: boolean }): ReadonlyArray<string> => {
  const path = expected.path
  if (found === undefined) return [`${path}: listed in the manifest but missing`]
  if (found.type !== expected.type) return [`${path}: a ${found.type}, the manifest says ${expected.type}`]
  const problems: Array<string> = []
  const mode = Number.parseInt(expected.mode, 8)
  // A symlink's own mode means nothing on Linux and is not restored.
  if (expected.type !== "symlink" && found.mode !== mode) problems.push(`${path}: mode ${octal(found.mode)}, the manifest says ${expected.mode}`)
  if (options.owners && (found.uid !== expected.uid || found.gid !== expected.gid)) {
    problems.push(`${path}: owner ${found.uid}:${found.gid}, the manifest says ${expected.uid}:${expected.gid}`)
  }
  if (expected.type === "file") {
    if (found.size !== expected.size) problems.push(`${path}: ${found.size} bytes, the manifest says ${expected.size}`)
    const expectedSeconds = Math.floor(Date.parse(expected.mtime) / 1000)
    if (found.mtimeSeconds !== expectedSeconds) problems.push(`${path}: modified ${new Date(found.mtimeSeconds * 1000).toISOString()}, the manifest says ${expected.mtime}`)
    if (expected.sha256 !== undefined && found.sha256 !== expected.sha256) {
      problems.push(`${path}: SHA-256 ${found.sha256 ?? "(none)"} differs from the manifest's ${expected.sha256}`)
    }
  }
  if (expected.type === "symlink" && found.target !== expected.target) {
    problems.push(`${path}: links to "${found.target ?? ""}", the manifest says "${expected.target ?? ""}"`)
  }
  return problems
}

/** The file a tar hard link ends at, following links to links. */
const rootOf = (entries: ReadonlyMap<string, TarEntry>, path: string): TarEntry | undefined => {
  let entry = entries.get(path)
  for (let hops = 0; entry?.type === "hardlink" && hops < 64; hops += 1) entry = entries.get(entry.linkTarget ?? "")
  return entry
}

/** Compares a scanned tar with its manifest, entry by entry, both ways. */
export const compareTarWithManifest = (entries: ReadonlyMap<string, TarEntry>, manifest: Iterable<TreeEntry>): ReadonlyArray<string> => {
  const problems = new ProblemList()
  const listed = new Set<string>()
  for (const expected of manifest) {
    listed.add(expected.path)
    const own = entries.get(expected.path)
    const root = rootOf(entries, expected.path)
    if (own?.type === "hardlink" && root === undefined) {
      problems.add(`${expected.path}: a hard link to "${own.linkTarget ?? ""}", which the archive does not hold`)
      continue
    }
    const found: FoundEntry | undefined =
      own === undefined || root === undefined ? undefined : { ...root, type: root.type === "hardlink" ? "other" : root.type, mode: own.mode, uid: own.uid, gid: own.gid, target: root.linkTarget }
    problems.addAll(compareEntry(expected, found, { owners: true }))
    if (expected.linkOf !== undefined && root !== undefined && root !== rootOf(entries, expected.linkOf)) {
      problems.add(`${expected.path}: not a hard link of ${expected.linkOf}, as the manifest says`)
    }
  }
  for (const path of entries.keys()) if (!listed.has(path)) problems.add(`${path}: in the archive but not in the manifest`)
  return problems.toArray()
}

/**
 * Compares a tar with its manifest entry by entry, in the order both list them, as a
 * manifest made from the tar stream itself does: nothing per entry is kept, so a tree of a
 * million files is checked in the memory of one. Of the entries only the members the disk
 * layout names are kept, for `compareLayout`.
 */
export class TarManifestCheck {
  private readonly problems = new ProblemList()
  private readonly members = new Map<string, MemberFound>()
  private readonly layoutMembers: ReadonlySet<string>
  private manifest: Iterator<TreeEntry> | undefined

  constructor(
    private readonly openManifest: () => Iterable<TreeEntry>,
    private readonly layout: DiskLayout | undefined
  ) {
    this.layoutMembers = new Set([
      ...(layout?.volumes ?? []).flatMap((volume) => (volume.archivedAs === "files" && volume.member !== undefined ? [volume.member] : [])),
      ...(layout === undefined ? [] : rawMembersOf(layout).map((raw) => raw.member))
    ])
  }

  private next(): TreeEntry | undefined {
    this.manifest ??= this.openManifest()[Symbol.iterator]()
    const next = this.manifest.next()
    return next.done === true ? undefined : next.value
  }

  /** The next entry of the tar. Throws when the manifest cannot be read. */
  entry(found: TarEntry): void {
    if (this.layoutMembers.has(found.path)) this.members.set(found.path, { type: found.type, size: found.size })
    const expected = this.next()
    const path = found.path
    if (expected === undefined) return this.problems.add(`${path}: in the archive but not in the manifest`)
    if (expected.path !== path) return this.problems.add(`${path}: in the archive where the manifest lists ${expected.path}`)
    if (expected.offset !== undefined && expected.offset !== found.headerOffset) {
      this.problems.add(`${path}: starts at byte ${found.headerOffset} of the archive, the manifest says ${expected.offset}`)
    }
    if (found.type === "hardlink") {
      if (expected.linkOf !== found.linkTarget) {
        this.problems.add(`${path}: a hard link of ${found.linkTarget ?? ""}, the manifest says ${expected.linkOf === undefined ? "a file of its own" : `a hard link of ${expected.linkOf}`}`)
      }
      // Its data is its first path's, checked on that path's line.
      const linked: FoundEntry = { type: "file", mode: found.mode, uid: found.uid, gid: found.gid, size: expected.size, mtimeSeconds: found.mtimeSeconds }
      return this.problems.addAll(compareEntry(expected, linked, { owners: true }))
    }
    if (expected.linkOf !== undefined) this.problems.add(`${path}: not a hard link of ${expected.linkOf}, as the manifest says`)
    this.problems.addAll(compareEntry(expected, { ...found, type: found.type, target: found.linkTarget }, { owners: true }))
  }

  /** Once the tar ended: what the manifest lists beyond it, the layout's members, and every difference found. Throws when the manifest cannot be read. */
  finish(): ReadonlyArray<string> {
    for (let expected = this.next(); expected !== undefined; expected = this.next()) this.problems.add(`${expected.path}: listed in the manifest but missing`)
    this.problems.addAll(compareLayout(this.layout, (member) => this.members.get(member)))
    return this.problems.toArray()
  }
}

/** What is on disk at a path, hashed when it is a regular file. */
const foundOnDisk = async (path: string, hash: boolean): Promise<(FoundEntry & { readonly inode: string }) | undefined> => {
  const stats = await lstat(path).catch(() => undefined)
  if (stats === undefined) return undefined
  const type = stats.isFile() ? "file" : stats.isDirectory() ? "directory" : stats.isSymbolicLink() ? "symlink" : "other"
  return {
    type,
    mode: stats.mode & 0o7777,
    uid: stats.uid,
    gid: stats.gid,
    size: type === "file" ? stats.size : 0,
    mtimeSeconds: Math.floor(stats.mtimeMs / 1000),
    sha256: type === "file" && hash ? await sha256OfFile(path) : undefined,
    target: type === "symlink" ? await readlink(path) : undefined,
    inode: `${stats.dev}:${stats.ino}`
  }
}

/**
 * Checks a restored directory against the manifest: every listed entry is there with its type,
 * mode, owner (when restored as root), size, time, content and link. Reads one file at a time.
 */
export const compareDirectoryWithManifest = async (
  directory: string,
  manifest: Iterable<TreeEntry>,
  options: { readonly owners: boolean; readonly onFile?: (bytes: number) => void }
): Promise<{ readonly problems: ReadonlyArray<string>; readonly checked: number }> => {
  const problems = new ProblemList()
  let checked = 0
  for (const expected of manifest) {
    checked += 1
    const found = await foundOnDisk(join(directory, expected.path), expected.sha256 !== undefined)
    problems.addAll(compareEntry(expected, found, options))
    if (expected.linkOf !== undefined && found !== undefined) {
      const first = await foundOnDisk(join(directory, expected.linkOf), false)
      if (first?.inode !== found.inode) problems.add(`${expected.path}: not a hard link of ${expected.linkOf}, as the manifest says`)
    }
    if (found?.type === "file") options.onFile?.(found.size)
  }
  return { problems: problems.toArray(), checked }
}

/** What an archive holds at a member's path: its type and, for a regular file, its size. */
export interface MemberFound {
  readonly type: FoundEntry["type"] | "hardlink"
  readonly size: number
}

/**
 * How the archive's members differ from the disk layout in the manifest's header: each
 * volume archived as files is a directory at its member, each raw range a regular file of
 * the range's exact size. (Every entry's own content is checked against its manifest line.)
 */
export const compareLayout = (layout: DiskLayout | undefined, found: (member: string) => MemberFound | undefined): ReadonlyArray<string> => {
  if (layout === undefined) return []
  const problems: Array<string> = []
  for (const volume of layout.volumes) {
    if (volume.archivedAs !== "files" || volume.member === undefined) continue
    const member = found(volume.member)
    if (member?.type !== "directory") problems.push(`${volume.name}: the manifest says its files are in ${volume.member}/, which the archive ${member === undefined ? "does not hold" : `holds as a ${member.type}`}`)
  }
  for (const raw of rawMembersOf(layout)) {
    const member = found(raw.member)
    if (member?.type !== "file") problems.push(`${raw.member}: the manifest lists it as a raw range of ${raw.sizeBytes} bytes, which the archive ${member === undefined ? "does not hold" : `holds as a ${member.type}`}`)
    else if (member.size !== raw.sizeBytes) problems.push(`${raw.member}: ${member.size} bytes, the manifest's raw range is ${raw.sizeBytes}`)
  }
  return problems
}

const describeVolume = (volume: ArchivedVolume): string => {
  const where =
    volume.partition !== undefined
      ? `partition ${volume.partition.number}${volume.partition.label === undefined ? "" : ` "${volume.partition.label}"`}`
      : volume.logicalVolume !== undefined
        ? `logical volume ${volume.logicalVolume.volumeGroup}/${volume.logicalVolume.name}`
        : "the disk"
  const what = volume.filesystem ?? "no filesystem"
  switch (volume.archivedAs) {
    case "files":
      return `${volume.member === "." ? "." : `${volume.member ?? volume.name}/`}: ${where} (${what})`
    case "raw":
      return `${volume.member ?? volume.name}: ${where} (${what}), its exact ${volume.rawBytes ?? 0} bytes${volume.reason === undefined ? "" : ` (${volume.reason})`}`
    case "lvm":
      return `${where}: LVM physical volume${volume.volumeGroup === undefined ? "" : ` of volume group ${volume.volumeGroup}`}, its logical volumes under lvm/`
    case "none":
      return `${where}: not archived${volume.reason === undefined ? "" : ` (${volume.reason})`}`
  }
}

/** One line per volume of a layout: where each partition and logical volume is in the archive. */
export const describeLayout = (layout: DiskLayout | undefined): ReadonlyArray<string> =>
  layout === undefined || layout.kind === "filesystem"
    ? []
    : [
        ...(layout.partitionTable?.head === undefined
          ? []
          : [`${layout.partitionTable.head.member}: the disk's first ${layout.partitionTable.head.sizeBytes} bytes (its ${layout.partitionTable.label} partition table)`]),
        ...layout.volumes.map(describeVolume)
      ]
