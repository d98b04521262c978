import { spawn } from "node:child_process"
import { lstat, mkdir } from "node:fs/promises"
import { join, resolve } from "node:path"
import type { Readable } from "node:stream"
import { Console, Effect } from "effect"
import { ProblemList, compareDirectoryWithManifest, compareLayout, describeLayout, readLines, treeEntries, type MemberFound } from "@backup-actions/archive"
import { rawMembersOf, type DiskLayout } from "@backup-actions/contracts"
import { CompositeChecksum, describeArchiveObject, openArchiveStream } from "../archive-object"
import { CheckFailed, OperationFailed, UsageError } from "../errors"
import { fetchManifest } from "../manifest"
import { Progress } from "../progress"
import { readThrough } from "../read-through"
import { manifestBeside, s3Url, type S3Location } from "../s3-url"
import { checksumProblems, objectProblems, scratchDirectory } from "../verify"

/** GNU tar extracting what the streamer's `tar --create` wrote: modes, numeric owners, links and holes. */
export const TAR_EXTRACT_ARGS = (directory: string): ReadonlyArray<string> => [
  "--extract",
  "--file=-",
  `--directory=${directory}`,
  "--numeric-owner",
  "--preserve-permissions",
  ...(process.getuid?.() === 0 ? ["--same-owner"] : [])
]

/** Pipes the content into `tar --extract`; rejects with tar's own words. */
const extractWithTar = (directory: string) => async (content: Readable): Promise<void> => {
  const child = spawn("tar", TAR_EXTRACT_ARGS(directory), { stdio: ["pipe", "ignore", "pipe"] })
  let errors = ""
  child.stderr.on("data", (data: Buffer) => (errors += data.toString()))
  child.stdin.on("error", () => undefined)
  content.pipe(child.stdin)
  await new Promise<void>((done, fail) => {
    child.on("error", (error) => fail(new Error(`cannot run tar: ${error.message}`)))
    child.on("close", (code) => (code === 0 ? done() : fail(new Error(`tar: ${errors.trim() || `exited with ${code}`}`))))
  })
}

/** What the restored directory holds at each top-level member the layout names. */
const membersOnDisk = async (directory: string, layout: DiskLayout | undefined): Promise<ReadonlyMap<string, MemberFound>> => {
  const members = new Map<string, MemberFound>()
  if (layout === undefined) return members
  const names = [...layout.volumes.flatMap((volume) => (volume.member === undefined ? [] : [volume.member])), ...rawMembersOf(layout).map((raw) => raw.member)]
  for (const name of new Set(names)) {
    const stats = await lstat(join(directory, name)).catch(() => undefined)
    if (stats !== undefined) members.set(name, { type: stats.isFile() ? "file" : stats.isDirectory() ? "directory" : stats.isSymbolicLink() ? "symlink" : "other", size: stats.isFile() ? stats.size : 0 })
  }
  return members
}

/** `restore --to <directory>`: a tar archive extracted, then every entry checked against the manifest. */
export const restoreTreeCommand = (location: S3Location, target: string) =>
  Effect.scoped(
    Effect.gen(function* () {
      const progress = yield* Progress
      const scratch = yield* scratchDirectory
      const manifestFile = join(scratch, "manifest.ndjson")
      const header = yield* fetchManifest(manifestBeside(location), manifestFile)
      if (header.kind !== "backup-actions/file-manifest") {
        return yield* new UsageError({ message: `${s3Url(location)} is a raw disk image, not a tar: restore it with --to-snapshot`, command: "restore" })
      }
      const directory = resolve(target)
      yield* Effect.tryPromise({
        try: () => mkdir(directory, { recursive: true }),
        catch: (error) => new OperationFailed({ message: `cannot make ${directory}: ${String(error)}` })
      })
      const archive = yield* describeArchiveObject(location)
      const meter = yield* progress.meter(`restore ${location.key}`, archive.size)
      const checksum = new CompositeChecksum(archive.partSizes)
      const stream = yield* openArchiveStream(archive, checksum, meter.update)
      const read = yield* Effect.tryPromise({
        try: () => readThrough(stream, header.compression, extractWithTar(directory)),
        catch: (error) => new OperationFailed({ message: `cannot read ${s3Url(location)}: ${error instanceof Error ? error.message : String(error)}` })
      })
      meter.finish()
      const problems = new ProblemList()
      problems.addAll(checksumProblems(header, archive, checksum))
      problems.addAll(objectProblems(header, archive))
      if (read.failure !== undefined) problems.add(`extraction stopped: ${read.failure}`)
      const owners = process.getuid?.() === 0
      if (read.failure === undefined) {
        const checkMeter = yield* progress.meter(`check ${directory}`, header.fileBytes)
        let checkedBytes = 0
        const checked = yield* Effect.tryPromise({
          try: () =>
            compareDirectoryWithManifest(directory, treeEntries(readLines(manifestFile)), {
              owners,
              onFile: (bytes) => checkMeter.update((checkedBytes += bytes))
            }),
          catch: (error) => new OperationFailed({ message: `cannot check ${directory}: ${error instanceof Error ? error.message : String(error)}` })
        })
        checkMeter.finish()
        problems.addAll(checked.problems)
        const members = yield* Effect.promise(() => membersOnDisk(directory, header.layout))
        problems.addAll(compareLayout(header.layout, (member) => members.get(member)))
      }
      if (problems.size > 0) {
        return yield* new CheckFailed({
          summary: `the restore of ${s3Url(location)} into ${directory} failed; what is there cannot be trusted:`,
          problems: problems.toArray()
        })
      }
      yield* Console.log(
        `restored ${header.entries} entries (${header.fileBytes} bytes in files) from ${s3Url(location)} into ${directory}; every entry matches the manifest${owners ? "" : " (owners not checked: not run as root)"}`
      )
      const layout = describeLayout(header.layout)
      if (layout.length > 0) yield* Console.log(`one member per partition and logical volume:\n${layout.map((line) => `  ${line}`).join("\n")}`)
    })
  )

