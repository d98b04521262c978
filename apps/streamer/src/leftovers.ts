import { mkdir, readFile, readdir, realpath, rm, writeFile } from "node:fs/promises"
import { join } from "node:path"
import { Effect, Schema } from "effect"
import { reasonOf, run } from "./exec"

/*
 * What a streamer that dies mid-archive (SIGKILL, OOM, a host reboot of its container) leaves on
 * its host: filesystems mounted under its work directory, loop devices over ranges of the
 * attached disk, device-mapper devices for logical volumes, and scratch directories. Scopes
 * release them on every outcome the process lives through; a killed process releases nothing.
 * So the streamer records each device as it makes it, in its work directory, and sweeps what
 * the records and the mount table name before it takes any message. The work directory
 * belongs to one streamer process (one per host with `ec2` compute, one per task with
 * Fargate), so what is found there is a dead predecessor's.
 */

/** The names the streamer gives what it makes in its work directory: the sweep removes only these. */
export const SCRATCH = {
  /** A disk's root: its filesystems' mount points and raw members. */
  disk: "disk-",
  /** A whole-disk filesystem's mount point. */
  mount: "mnt-",
  /** The content check's decompressed copy of an archive read back. */
  verify: "verify-",
  /** A tar's file-level manifest, spooled while the tar streams. */
  manifest: "manifest-",
  /** A logical volume's device-mapper device, and its table file. */
  mapper: "backup-actions-"
} as const

/** The directory of the device records, inside the work directory. */
export const DEVICE_RECORDS = ".devices"

/** A device the streamer made: enough to tell it from another that later took the same name. */
export const DeviceRecord = Schema.Union(
  Schema.Struct({ kind: Schema.Literal("loop"), device: Schema.String, backing: Schema.String, offset: Schema.Number }),
  Schema.Struct({ kind: Schema.Literal("device-mapper"), name: Schema.String })
)
export type DeviceRecord = typeof DeviceRecord.Type

const recordFile = (workDir: string, record: DeviceRecord): string =>
  join(workDir, DEVICE_RECORDS, `${record.kind}-${(record.kind === "loop" ? record.device : record.name).replace(/[^A-Za-z0-9._-]/g, "_")}.json`)

/** Writes the record of a device just made; the sweep trusts nothing it has no record of. */
export const recordDevice = (workDir: string, record: DeviceRecord) =>
  Effect.promise(async () => {
    await mkdir(join(workDir, DEVICE_RECORDS), { recursive: true })
    await writeFile(recordFile(workDir, record), JSON.stringify(record))
  })

/** Removes the record of a device the streamer itself released. */
export const forgetDevice = (workDir: string, record: DeviceRecord) => Effect.promise(() => rm(recordFile(workDir, record), { force: true }))

/** A mount point as /proc/self/mountinfo writes it: space, tab, newline and backslash as octal escapes. */
export const unescapeMountPath = (field: string): string => field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)))

/** The mount points at or below `directory`, deepest first (so that a mount inside another goes first). */
export const mountsBelow = (mountinfo: string, directory: string): ReadonlyArray<string> =>
  mountinfo
    .split("\n")
    .map((line) => unescapeMountPath(line.split(" ")[4] ?? ""))
    .filter((mountPoint) => mountPoint === directory || mountPoint.startsWith(`${directory}/`))
    .sort((left, right) => right.split("/").length - left.split("/").length || right.length - left.length)

/** What `losetup --json --list` says of one loop device. */
interface LoopListing {
  readonly name: string
  readonly "back-file"?: string | null
  readonly offset?: number | string
}

/** The loop devices in use, by name, as `losetup` lists them (none when it lists nothing). */
const loopDevices = run("losetup", ["--json", "--list", "--output", "NAME,BACK-FILE,OFFSET"]).pipe(
  Effect.map((output): ReadonlyArray<LoopListing> => (output.trim() === "" ? [] : ((JSON.parse(output) as { loopdevices?: ReadonlyArray<LoopListing> }).loopdevices ?? []))),
  Effect.orElseSucceed((): ReadonlyArray<LoopListing> => [])
)

/** What the sweep removed and what it could not, for the log. */
export interface SweepReport {
  readonly unmounted: ReadonlyArray<string>
  readonly detached: ReadonlyArray<string>
  readonly removed: ReadonlyArray<string>
  readonly failures: ReadonlyArray<string>
}

const readRecords = (directory: string) =>
  Effect.promise(async () => {
    const names = await readdir(directory).catch(() => [])
    const records: Array<{ readonly file: string; readonly record: DeviceRecord | undefined }> = []
    for (const name of names) {
      const file = join(directory, name)
      const text = await readFile(file, "utf8").catch(() => "")
      const decoded = Schema.decodeUnknownEither(Schema.parseJson(DeviceRecord))(text)
      records.push({ file, record: decoded._tag === "Right" ? decoded.right : undefined })
    }
    return records
  })

/**
 * Removes what a dead streamer left in `workDir`: unmounts every filesystem below it (lazily
 * when a plain unmount is refused), removes the device-mapper devices and detaches the loop
 * devices its records name (a loop device only while it still has the recorded backing and
 * offset), then its scratch directories and files (by their SCRATCH names: a file of
 * anything else is left). It never fails: what it cannot remove is
 * reported, and the archive that needs the same resources fails with its own reason.
 */
export const sweepLeftovers = (workDir: string): Effect.Effect<SweepReport> =>
  Effect.gen(function* () {
    const unmounted: Array<string> = []
    const detached: Array<string> = []
    const removed: Array<string> = []
    const failures: Array<string> = []
    const directory = yield* Effect.promise(() => realpath(workDir).catch(() => undefined))
    if (directory === undefined) return { unmounted, detached, removed, failures }

    const mountinfo = yield* Effect.promise(() => readFile("/proc/self/mountinfo", "utf8").catch(() => ""))
    for (const mountPoint of mountsBelow(mountinfo, directory)) {
      const plain = yield* Effect.either(run("umount", [mountPoint]))
      if (plain._tag === "Right") {
        unmounted.push(mountPoint)
        continue
      }
      const lazy = yield* Effect.either(run("umount", ["--lazy", mountPoint]))
      if (lazy._tag === "Right") unmounted.push(mountPoint)
      else failures.push(`cannot unmount ${mountPoint}: ${reasonOf(lazy.left)}`)
    }

    const records = yield* readRecords(join(directory, DEVICE_RECORDS))
    // Logical volumes' device-mapper devices sit on loop devices: they go first.
    for (const { file, record } of records) {
      if (record?.kind !== "device-mapper") continue
      const removal = yield* Effect.either(run("dmsetup", ["remove", "--retry", record.name]))
      if (removal._tag === "Right") detached.push(`/dev/mapper/${record.name}`)
      else if (!/No such device|not found/i.test(reasonOf(removal.left))) failures.push(`cannot remove /dev/mapper/${record.name}: ${reasonOf(removal.left)}`)
      yield* Effect.promise(() => rm(file, { force: true }))
    }
    const loops = yield* loopDevices
    for (const { file, record } of records) {
      if (record?.kind !== "loop") {
        if (record === undefined) yield* Effect.promise(() => rm(file, { force: true }))
        continue
      }
      const listed = loops.find((loop) => loop.name === record.device)
      if (listed !== undefined && listed["back-file"] === record.backing && Number(listed.offset ?? 0) === record.offset) {
        const detach = yield* Effect.either(run("losetup", ["--detach", record.device]))
        if (detach._tag === "Right") detached.push(record.device)
        else failures.push(`cannot detach ${record.device}: ${reasonOf(detach.left)}`)
      }
      yield* Effect.promise(() => rm(file, { force: true }))
    }

    // Scratch: mount points and tables of the dead process. A directory that still holds a
    // mount (one that could not be undone) is left, never removed through.
    const stillMounted = new Set(mountsBelow(yield* Effect.promise(() => readFile("/proc/self/mountinfo", "utf8").catch(() => "")), directory))
    for (const name of yield* Effect.promise(() => readdir(directory).catch(() => []))) {
      if (!Object.values(SCRATCH).some((prefix) => name.startsWith(prefix))) continue
      const path = join(directory, name)
      if ([...stillMounted].some((mountPoint) => mountPoint === path || mountPoint.startsWith(`${path}/`))) continue
      const removal = yield* Effect.either(Effect.tryPromise(() => rm(path, { recursive: true, force: true })))
      if (removal._tag === "Right") removed.push(path)
      else failures.push(`cannot remove ${path}: ${String(removal.left.cause)}`)
    }
    return { unmounted, detached, removed, failures }
  })

/** The sweep at the streamer's start, logged: what a dead predecessor left is named, then gone. */
export const sweepAtStart = (workDir: string): Effect.Effect<void> =>
  sweepLeftovers(workDir).pipe(
    Effect.flatMap((report) =>
      report.unmounted.length + report.detached.length + report.failures.length === 0
        ? Effect.void
        : Effect.logWarning("removed what a stopped streamer left on this host").pipe(
            Effect.annotateLogs({
              unmounted: report.unmounted.join(","),
              detached: report.detached.join(","),
              removed: String(report.removed.length),
              failures: report.failures.join("; ")
            })
          )
    )
  )
