import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import type { Readable } from "node:stream"
import { Console, Effect } from "effect"
import {
  ProblemList,
  RawImageCheck,
  TarManifestCheck,
  TarScanner,
  compareLayout,
  compareTarWithManifest,
  rawRanges,
  readLines,
  treeEntries,
  type ManifestHeader,
  type TarEntry
} from "@backup-actions/archive"
import { CompositeChecksum, describeArchiveObject, openArchiveStream, sameComposite, type ArchiveObject } from "./archive-object"
import { CheckFailed, OperationFailed } from "./errors"
import { fetchManifest } from "./manifest"
import { Progress } from "./progress"
import { readThrough } from "./read-through"
import { manifestBeside, s3Url, type S3Location } from "./s3-url"

/** A scratch directory for the command's run, removed when it ends. */
export const scratchDirectory = Effect.acquireRelease(
  Effect.tryPromise({
    try: () => mkdtemp(join(tmpdir(), "backup-actions-cli-")),
    catch: (error) => new OperationFailed({ message: `cannot make a scratch directory: ${String(error)}` })
  }),
  (directory) => Effect.promise(() => rm(directory, { recursive: true, force: true }))
)

/** The checks that need only the manifest and S3's answers, before a byte is read. */
export const objectProblems = (header: ManifestHeader, archive: ArchiveObject): ReadonlyArray<string> => [
  ...(header.archiveBytes === archive.size ? [] : [`the archive holds ${archive.size} bytes; the manifest says ${header.archiveBytes}`]),
  ...(archive.storedChecksum === undefined || sameComposite(archive.storedChecksum, header.checksum.value)
    ? []
    : [`S3's stored checksum ${archive.storedChecksum} differs from the manifest's ${header.checksum.value}`])
]

/** The checksum of the bytes read against the manifest's; the first thing a reader wants to know. */
export const checksumProblems = (header: ManifestHeader, archive: ArchiveObject, checksum: CompositeChecksum): ReadonlyArray<string> => {
  if (checksum.bytes !== archive.size) return [`only ${checksum.bytes} of the archive's ${archive.size} bytes could be read`]
  const computed = checksum.digest()
  return sameComposite(computed, header.checksum.value)
    ? []
    : [`the archive's composite SHA-256 over its ${archive.partSizes.length} parts is ${computed}; the manifest says ${header.checksum.value}`]
}

/** Whether a file manifest's entries give their offsets (its first entry does). */
const listsOffsets = (manifestFile: string): boolean => {
  const entries = treeEntries(readLines(manifestFile))
  const first = entries.next()
  entries.return(undefined)
  return first.done !== true && first.value.offset !== undefined
}

/** Streams the archive once: its checksum, and its content checked against the manifest. */
const checkArchive = (location: S3Location, scratch: string) =>
  Effect.gen(function* () {
    const progress = yield* Progress
    const manifestFile = join(scratch, "manifest.ndjson")
    const header = yield* fetchManifest(manifestBeside(location), manifestFile)
    const archive = yield* describeArchiveObject(location)
    const meter = yield* progress.meter(`verify ${location.key}`, archive.size)
    const checksum = new CompositeChecksum(archive.partSizes)
    const stream = yield* openArchiveStream(archive, checksum, meter.update)
    const content = new ProblemList()
    let summary = ""
    const consume = async (): Promise<string | undefined> => {
      if (header.kind === "backup-actions/raw-image-manifest") {
        const check = new RawImageCheck(rawRanges(readLines(manifestFile)), header.imageBytes)
        const read = await readThrough(stream, header.compression, async (image: Readable) => {
          for await (const chunk of image) check.feed(chunk as Buffer)
        })
        if (read.failure !== undefined) return read.failure
        content.addAll(check.finish())
        summary = `${header.imageBytes} bytes of raw image, ${check.matched} listed ranges`
        return undefined
      }
      const entries = new Map<string, TarEntry>()
      // A manifest that gives offsets lists the entries in the archive's order: each is compared as
      // it is read, and none is kept. One without (written before offsets) is compared by path.
      const inOrder = listsOffsets(manifestFile)
      const ordered = new TarManifestCheck(() => treeEntries(readLines(manifestFile)), header.layout)
      let scanned = 0
      const scanner = new TarScanner((entry) => {
        scanned += 1
        if (inOrder) ordered.entry(entry)
        else entries.set(entry.path, entry)
      })
      const read = await readThrough(stream, header.compression, async (tar: Readable) => {
        for await (const chunk of tar) scanner.push(chunk as Buffer)
        scanner.end()
      })
      if (read.failure !== undefined) return read.failure
      if (inOrder) content.addAll(ordered.finish())
      else {
        content.addAll(compareTarWithManifest(entries, treeEntries(readLines(manifestFile))))
        content.addAll(compareLayout(header.layout, (member) => entries.get(member)))
      }
      const volumes = header.layout?.kind === "volumes" ? header.layout.volumes.filter((volume) => volume.archivedAs === "files" || volume.archivedAs === "raw").length : 0
      summary = `${scanned} tar entries${volumes === 0 ? "" : ` of ${volumes} partitions and logical volumes`}`
      return undefined
    }
    const failure = yield* Effect.tryPromise({
      try: consume,
      catch: (error) => new OperationFailed({ message: `cannot read ${s3Url(location)}: ${error instanceof Error ? error.message : String(error)}` })
    })
    meter.finish()
    const problems = new ProblemList()
    problems.addAll(checksumProblems(header, archive, checksum))
    problems.addAll(objectProblems(header, archive))
    if (failure !== undefined) problems.add(`the content cannot be read to its end: ${failure}`)
    problems.addAll(content.toArray())
    return { header, archive, problems: problems.toArray(), summary }
  })

/** `verify`: exit 0 when the archive matches its manifest in every respect, 1 naming each difference. */
export const verifyCommand = (location: S3Location) =>
  Effect.scoped(
    Effect.gen(function* () {
      const scratch = yield* scratchDirectory
      const result = yield* checkArchive(location, scratch)
      if (result.problems.length > 0) {
        return yield* new CheckFailed({ summary: `${s3Url(location)} does not match its manifest:`, problems: result.problems })
      }
      yield* Console.log(
        `${s3Url(location)} matches its manifest: checksum ${result.header.checksum.value} over ${result.archive.partSizes.length} parts, ${result.summary}`
      )
    })
  )
