import { HeadObjectCommand, RestoreObjectCommand } from "@aws-sdk/client-s3"
import { Clock, Context, Duration, Effect, Layer, Schedule } from "effect"
import { S3, awsCall } from "@backup-actions/aws"
import type { RestoreTier } from "./args"
import { OperationFailed, UsageError } from "./errors"
import { s3Url, type S3Location } from "./s3-url"

/**
 * Where S3 serves an object only after RestoreObject: the GLACIER and DEEP_ARCHIVE classes, and
 * INTELLIGENT_TIERING's opt-in archive tiers (HeadObject's ArchiveStatus). GLACIER_IR and the
 * rest are read directly.
 */
export const COLD_CLASSES = ["GLACIER", "DEEP_ARCHIVE", "INTELLIGENT_TIERING/ARCHIVE_ACCESS", "INTELLIGENT_TIERING/DEEP_ARCHIVE_ACCESS"] as const
export type ColdClass = (typeof COLD_CLASSES)[number]

/**
 * Intelligent-Tiering restores an object back into its own Frequent Access tier, for good: its
 * RestoreObject takes no Days (S3 refuses them), where a Glacier class keeps a copy for Days.
 */
const isIntelligentTiering = (storageClass: ColdClass): boolean => storageClass.startsWith("INTELLIGENT_TIERING/")

/** How long S3 keeps a restored copy beside the archived object: the command reads it at once, a second day is margin. */
export const RESTORED_COPY_DAYS = 2

/** What a command needs to read objects in cold storage: the retrieval tier, and where its waiting is shown. */
export interface ColdReadsShape {
  readonly tier: RestoreTier
  /** The command whose usage a wrong tier points at. */
  readonly command: string | undefined
  /** Shows one line about a wait in progress. */
  readonly show: (line: string) => Effect.Effect<void>
}

/**
 * The retrieval tier of the running command (`--tier`), read by every function that reads an
 * object (manifest, archive), so that none of them takes it as an argument. Without a layer it is
 * Standard, the default of `--tier`, and the lines go to stderr.
 */
export class ColdReads extends Context.Reference<ColdReads>()("backup-actions/cli/ColdReads", {
  defaultValue: (): ColdReadsShape => ({ tier: "Standard", command: undefined, show: (line) => Effect.sync(() => process.stderr.write(`${line}\n`)) })
}) {
  /** The parsed command's tier, its waiting shown on the given stream (a line each time S3 is asked). */
  static readonly layer = (tier: RestoreTier, command: string, stream: NodeJS.WritableStream) =>
    Layer.succeed(ColdReads, { tier, command, show: (line) => Effect.sync(() => void stream.write(`${line}\n`)) })
}

/** How long a retrieval takes (AWS's documented typical times), how often to ask, and when to stop waiting. */
export interface RetrievalTime {
  /** The typical range: `from` (when AWS names one) to `within`. */
  readonly from: Duration.Duration | undefined
  readonly within: Duration.Duration
  readonly pollEvery: Duration.Duration
  /** The command gives up after this long; the restore itself goes on in S3, and a later run finds it. */
  readonly ceiling: Duration.Duration
}

const time = (from: Duration.DurationInput | undefined, within: Duration.DurationInput, pollEvery: Duration.DurationInput, ceiling: Duration.DurationInput): RetrievalTime => ({
  from: from === undefined ? undefined : Duration.decode(from),
  within: Duration.decode(within),
  pollEvery: Duration.decode(pollEvery),
  ceiling: Duration.decode(ceiling)
})

const FLEXIBLE_RETRIEVAL: Partial<Record<RestoreTier, RetrievalTime>> = {
  Expedited: time("1 minute", "5 minutes", "15 seconds", "30 minutes"),
  Standard: time("3 hours", "5 hours", "2 minutes", "12 hours"),
  Bulk: time("5 hours", "12 hours", "5 minutes", "24 hours")
}
const DEEP_RETRIEVAL: Partial<Record<RestoreTier, RetrievalTime>> = {
  Standard: time(undefined, "12 hours", "5 minutes", "24 hours"),
  Bulk: time(undefined, "48 hours", "10 minutes", "72 hours")
}

/**
 * Typical retrieval times (AWS documentation: S3 Glacier Flexible Retrieval and
 * Intelligent-Tiering's Archive Access tier, Expedited 1–5 minutes, Standard 3–5 hours, Bulk
 * 5–12 hours; S3 Glacier Deep Archive and the Deep Archive Access tier, Standard within 12
 * hours, Bulk within 48 hours, no Expedited). The ceiling is well past the slowest typical time.
 */
export const RETRIEVAL_TIMES: Readonly<Record<ColdClass, Partial<Record<RestoreTier, RetrievalTime>>>> = {
  GLACIER: FLEXIBLE_RETRIEVAL,
  DEEP_ARCHIVE: DEEP_RETRIEVAL,
  "INTELLIGENT_TIERING/ARCHIVE_ACCESS": FLEXIBLE_RETRIEVAL,
  "INTELLIGENT_TIERING/DEEP_ARCHIVE_ACCESS": DEEP_RETRIEVAL
}

/** What S3 says about an object's readability. */
export type ObjectState =
  | { readonly _tag: "Absent" }
  /** Not in a cold class, or a restored copy is there. */
  | { readonly _tag: "Readable" }
  /** In a cold class, no restore asked for. */
  | { readonly _tag: "Archived"; readonly storageClass: ColdClass }
  /** In a cold class, S3 restoring it (x-amz-restore: ongoing-request="true"). */
  | { readonly _tag: "Restoring"; readonly storageClass: ColdClass }

/** Where HeadObject says an object lies, when that needs a restore: its class, or Intelligent-Tiering's archive tier. */
const coldClassOf = (head: { readonly StorageClass?: string | undefined; readonly ArchiveStatus?: string | undefined }): ColdClass | undefined => {
  const named = head.StorageClass === "INTELLIGENT_TIERING" ? `INTELLIGENT_TIERING/${head.ArchiveStatus ?? ""}` : head.StorageClass
  return COLD_CLASSES.find((cold) => cold === named)
}

/**
 * Reads HeadObject's StorageClass, ArchiveStatus and Restore (`ongoing-request="true"`, or
 * `"false"` once restored: with an expiry-date for a Glacier class' copy, without one for
 * Intelligent-Tiering, whose object is back in its Frequent Access tier).
 */
export const objectState = (head: { readonly StorageClass?: string | undefined; readonly ArchiveStatus?: string | undefined; readonly Restore?: string | undefined }): ObjectState => {
  const storageClass = coldClassOf(head)
  if (storageClass === undefined) return { _tag: "Readable" }
  const ongoing = /ongoing-request\s*=\s*"(true|false)"/.exec(head.Restore ?? "")?.[1]
  if (ongoing === "false") return { _tag: "Readable" }
  if (ongoing === "true") return { _tag: "Restoring", storageClass }
  return { _tag: "Archived", storageClass }
}

/** Asks S3 where the object stands; a missing object is Absent (its reader says so in its own words). */
export const inspectObject = (location: S3Location) =>
  Effect.flatMap(S3, (s3) =>
    awsCall("s3:HeadObject", (abortSignal) => s3.send(new HeadObjectCommand({ Bucket: location.bucket, Key: location.key }), { abortSignal }))
  ).pipe(
    Effect.map(objectState),
    Effect.catchIf(
      (error) => error.kind === "not-found",
      (): Effect.Effect<ObjectState> => Effect.succeed({ _tag: "Absent" })
    )
  )

/** `3 h 05 min`, `12 min`, `40 s`. */
export const formatDuration = (duration: Duration.Duration): string => {
  const seconds = Math.max(0, Math.round(Duration.toSeconds(duration)))
  if (seconds < 60) return `${seconds} s`
  const minutes = Math.round(seconds / 60)
  if (minutes < 60) return `${minutes} min`
  const hours = Math.floor(minutes / 60)
  const rest = minutes % 60
  return rest === 0 ? `${hours} h` : `${hours} h ${String(rest).padStart(2, "0")} min`
}

/** `1–5 min`, `within 12 h`. */
export const describeTypical = (retrieval: RetrievalTime): string =>
  retrieval.from === undefined ? `within ${formatDuration(retrieval.within)}` : `${formatDuration(retrieval.from)}–${formatDuration(retrieval.within)}`

/** The ETA after `elapsed`: the rest of the typical range, or, past it, how long the command still waits. */
export const describeEta = (retrieval: RetrievalTime, elapsed: Duration.Duration): string => {
  const left = (until: Duration.Duration) => formatDuration(Duration.subtract(until, Duration.min(elapsed, until)))
  if (retrieval.from !== undefined && Duration.lessThan(elapsed, retrieval.from)) return `ETA ${left(retrieval.from)}–${left(retrieval.within)}`
  if (Duration.lessThan(elapsed, retrieval.within)) return `ETA within ${left(retrieval.within)}`
  return `slower than the typical ${describeTypical(retrieval)}; waiting at most ${left(retrieval.ceiling)} more`
}

/** The line shown while waiting: what for, how long so far, and the ETA. */
export const waitingLine = (location: S3Location, storageClass: ColdClass, tier: RestoreTier, retrieval: RetrievalTime, elapsed: Duration.Duration): string =>
  `waiting for S3 to restore ${s3Url(location)} from ${storageClass} (${tier} retrieval, typically ${describeTypical(retrieval)}): ${formatDuration(elapsed)} so far, ${describeEta(retrieval, elapsed)}`

/** The tier must exist for the class: DEEP_ARCHIVE has no Expedited retrieval. */
const retrievalFor = (location: S3Location, storageClass: ColdClass, tier: RestoreTier, command: string | undefined) => {
  const retrieval = RETRIEVAL_TIMES[storageClass][tier]
  if (retrieval !== undefined) return Effect.succeed(retrieval)
  const offered = Object.entries(RETRIEVAL_TIMES[storageClass]).map(([name, times]) => `${name} (typically ${describeTypical(times)})`)
  return Effect.fail(
    new UsageError({
      message: `${s3Url(location)} is in ${storageClass}, which offers no ${tier} retrieval; choose --tier ${offered.join(" or ")}`,
      ...(command === undefined ? {} : { command })
    })
  )
}

/** RestoreObject at the tier (with Days for a Glacier class' copy only); a restore already running is what we want, not an error. */
export const requestRestore = (location: S3Location, tier: RestoreTier, storageClass: ColdClass) =>
  Effect.flatMap(S3, (s3) =>
    awsCall("s3:RestoreObject", (abortSignal) =>
      s3.send(
        new RestoreObjectCommand({
          Bucket: location.bucket,
          Key: location.key,
          RestoreRequest: { ...(isIntelligentTiering(storageClass) ? {} : { Days: RESTORED_COPY_DAYS }), GlacierJobParameters: { Tier: tier } }
        }),
        { abortSignal }
      )
    )
  ).pipe(
    Effect.asVoid,
    Effect.catchIf(
      (error) => error.code === "RestoreAlreadyInProgress",
      () => Effect.void
    ),
    Effect.catchIf(
      (error) => error.code === "GlacierExpeditedRetrievalNotAvailable",
      () =>
        Effect.fail(
          new OperationFailed({ message: `S3 has no capacity for an Expedited retrieval of ${s3Url(location)} now; try again later or use --tier Standard` })
        )
    )
  )

/** Polls HeadObject until the restored copy is there, showing the wait; fails past the tier's ceiling. */
const waitUntilRestored = (location: S3Location, storageClass: ColdClass, tier: RestoreTier, retrieval: RetrievalTime) =>
  Effect.gen(function* () {
    const cold = yield* ColdReads
    const started = yield* Clock.currentTimeMillis
    const check = Effect.gen(function* () {
      const state = yield* inspectObject(location)
      if (state._tag === "Restoring") {
        const now = yield* Clock.currentTimeMillis
        yield* cold.show(waitingLine(location, storageClass, tier, retrieval, Duration.millis(now - started)))
      }
      return state
    })
    const polls = Schedule.spaced(retrieval.pollEvery).pipe(
      Schedule.upTo(retrieval.ceiling),
      Schedule.whileInput((state: ObjectState) => state._tag === "Restoring"),
      Schedule.passthrough
    )
    const last = yield* Effect.repeat(check, polls)
    switch (last._tag) {
      case "Readable":
        return
      case "Absent":
        return yield* new OperationFailed({ message: `${s3Url(location)} disappeared while S3 was restoring it` })
      case "Archived":
        return yield* new OperationFailed({ message: `S3 stopped restoring ${s3Url(location)} before it was readable (its restored copy may have expired); run the command again` })
      case "Restoring":
        return yield* new OperationFailed({
          message: `S3 has not restored ${s3Url(location)} from ${storageClass} after ${formatDuration(retrieval.ceiling)} (${tier} retrieval, typically ${describeTypical(retrieval)}); the restore goes on in S3: run the command again later`
        })
    }
  })

/**
 * Makes objects readable: those in GLACIER, DEEP_ARCHIVE or an Intelligent-Tiering archive tier are restored at the command's tier
 * (one already being restored is waited for, one already restored is read as it is), all at
 * once, then waited for. A tier the class does not offer fails before any restore is asked for.
 * Other classes, GLACIER_IR included, and missing objects pass untouched.
 */
export const bringBack = (locations: ReadonlyArray<S3Location>) =>
  Effect.gen(function* () {
    const cold = yield* ColdReads
    // The same object named twice (a manifest given as the archive) is restored once.
    const distinct = [...new Map(locations.map((location) => [s3Url(location), location])).values()]
    const states = yield* Effect.forEach(distinct, (location) => Effect.map(inspectObject(location), (state) => ({ location, state })), { concurrency: 4 })
    const waits = yield* Effect.forEach(
      states.flatMap(({ location, state }) => (state._tag === "Archived" || state._tag === "Restoring" ? [{ location, state }] : [])),
      ({ location, state }) => Effect.map(retrievalFor(location, state.storageClass, cold.tier, cold.command), (retrieval) => ({ location, state, retrieval }))
    )
    yield* Effect.forEach(
      waits,
      ({ location, state, retrieval }) =>
        Effect.gen(function* () {
          if (state._tag === "Archived") {
            yield* requestRestore(location, cold.tier, state.storageClass)
            yield* cold.show(`asked S3 to restore ${s3Url(location)} from ${state.storageClass} (${cold.tier} retrieval, typically ${describeTypical(retrieval)})`)
          } else {
            yield* cold.show(`S3 is already restoring ${s3Url(location)} from ${state.storageClass}; waiting for it`)
          }
          yield* waitUntilRestored(location, state.storageClass, cold.tier, retrieval)
        }),
      { concurrency: "unbounded", discard: true }
    )
  })

/** One object: see bringBack. */
export const ensureReadable = (location: S3Location) => bringBack([location])
