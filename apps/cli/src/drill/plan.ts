import type { DrillRecord, DrillTarget } from "@backup-actions/ledger"
import type { ReportEntry } from "@backup-actions/reports"
import { parseS3Url, type S3Location } from "../s3-url"
import { Either } from "effect"

/** One artifact to drill: the newest of its resource. */
export interface DrillCandidate {
  readonly resourceArn: string
  readonly recoveryPoint: string
  readonly location: S3Location
  /** When the artifact was made (its outcome's time, ISO 8601). */
  readonly time: string
}

/**
 * What an artifact is restored into, by its key as the services write it; a reason for the
 * artifacts no restore reads (an RDS export's Parquet folder, a native DynamoDB export).
 */
export const drillTargetOf = (location: S3Location): Either.Either<DrillTarget, string> => {
  const name = location.key.slice(location.key.lastIndexOf("/") + 1)
  if (/^disk\.img\.(zst|gz)$/.test(name)) return Either.right("snapshot")
  if (/^files\.tar\.(zst|gz)$/.test(name)) return Either.right("directory")
  if (name === "data.parquet" || (name === "manifest.json" && location.key.includes("/dynamodb/"))) return Either.right("table")
  if (/\.sql\.(zst|gz)$/.test(name) || (name === "manifest.ndjson" && location.key.endsWith("/dump/manifest.ndjson"))) return Either.right("database")
  if (name === "image.json" || /^ami-[0-9a-f]+\.bin$/.test(name)) return Either.right("image")
  return Either.left(`no restore reads ${name === "" ? "a folder" : name} (an RDS or Aurora export, or a native DynamoDB export, is restored by AWS from S3)`)
}

/** The artifact of an outcome, when the outcome made one that can be drilled from S3: a dump's folder stands for its manifest. */
const artifactOf = (entry: ReportEntry): S3Location | undefined => {
  if (entry.status !== "succeeded" || entry.location === undefined) return undefined
  if (entry.kind !== "archive" && entry.kind !== "export") return undefined
  return Either.getOrUndefined(parseS3Url(entry.location.endsWith("/dump/") ? `${entry.location}manifest.ndjson` : entry.location))
}

/**
 * The newest artifact of each protected resource among `entries` (outcomes from the reporter's
 * book), resources named by the outcome's resourceArn, else by its recovery point (outcomes
 * recorded before events carried the resource).
 */
export const newestArtifacts = (entries: ReadonlyArray<ReportEntry>): ReadonlyArray<DrillCandidate> => {
  const newest = new Map<string, DrillCandidate>()
  for (const entry of entries) {
    const location = artifactOf(entry)
    if (location === undefined) continue
    const resourceArn = entry.resourceArn ?? entry.recoveryPoint
    const known = newest.get(resourceArn)
    if (known === undefined || known.time < entry.time) newest.set(resourceArn, { resourceArn, recoveryPoint: entry.recoveryPoint, location, time: entry.time })
  }
  return [...newest.values()].sort((left, right) => left.resourceArn.localeCompare(right.resourceArn))
}

/**
 * The candidates whose last drill is older than `everyMs` at `nowMs`, or that never had one.
 * A drill that did not pass counts too: a resource whose drill failed is drilled again only
 * after the period, so that a broken artifact does not make every run fail the same way; a
 * newer artifact of it is drilled at once.
 */
export const dueDrills = (
  candidates: ReadonlyArray<DrillCandidate>,
  latest: ReadonlyArray<DrillRecord>,
  everyMs: number,
  nowMs: number
): ReadonlyArray<DrillCandidate> => {
  const last = new Map(latest.map((drill) => [drill.resourceArn, drill]))
  return candidates.filter((candidate) => {
    const drill = last.get(candidate.resourceArn)
    if (drill === undefined) return true
    const artifact = `s3://${candidate.location.bucket}/${candidate.location.key}`
    return drill.artifact !== artifact || nowMs - drill.startedAt >= everyMs
  })
}
