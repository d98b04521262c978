/**
 * Archives a file or block device as a raw image through the streamer's data path, outside
 * the event flow: the benchmark runs it, and an operator can use it to archive a device by
 * hand. It writes the manifest beside the archive (`<key>.manifest.ndjson`), then reads the
 * archive back and verifies its content against it, as the service does before it may delete
 * a source. `--sink null` compresses and discards, to show the CPU-bound rate.
 *
 *   archive-file --source /dev/xvdf --bucket B --key K [--compression zstd|gzip] [--sink s3|null]
 */
import { statSync } from "node:fs"
import { parseArgs } from "node:util"
import { Duration, Effect, Layer, Option } from "effect"
import { AwsConfig, DynamoDb, S3 } from "@backup-actions/aws"
import { ServiceSettings } from "@backup-actions/config"
import { Ledger, type Claim, type UploadProgress } from "@backup-actions/ledger"
import { DEFAULT_UPLOAD_CONCURRENCY, archiveToS3, type ArchiveResult } from "./archive-pipeline"
import { COMPRESS_CONCURRENCY, SOURCE_BUFFERS, compressChunk } from "./compress"
import { verifyArchive } from "./content-verification"
import { CHUNK_BYTES } from "./ebs-direct-source"
import { rawImageManifestHeader, writeManifest } from "./manifest"
import { makeOrderedPool } from "./ordered-pool"
import { compressedUpperBound, partScheduleFor } from "./part-size"
import { fileChunkSource } from "./stream-source"

const { values } = parseArgs({
  options: {
    source: { type: "string" },
    bucket: { type: "string", default: "" },
    key: { type: "string", default: "" },
    compression: { type: "string", default: "zstd" },
    sink: { type: "string", default: "s3" }
  }
})
const source = values.source ?? ""
const compression = values.compression === "gzip" ? "gzip" : "zstd"
if (source === "" || (values.sink === "s3" && (values.bucket === "" || values.key === ""))) {
  process.stderr.write("usage: archive-file --source PATH --bucket BUCKET --key KEY [--compression zstd|gzip] [--sink s3|null]\n")
  process.exit(2)
}
const size = statSync(source).size
const open = () => fileChunkSource(source, size, { detectHoles: true, buffers: SOURCE_BUFFERS })

/** Compresses every chunk (in parallel, in order) and counts the output: no network, no storage. */
const nullSink = Effect.scoped(
  Effect.gen(function* () {
    const chunks = yield* open()
    const pool = yield* makeOrderedPool<number, never>(COMPRESS_CONCURRENCY)
    yield* Effect.forkScoped(
      Effect.gen(function* () {
        while (true) {
          const job = yield* Effect.orDie(chunks.pull)
          if (Option.isNone(job)) break
          const { produce, inputBytes, release } = job.value
          yield* pool.submit(
            Effect.flatMap(Effect.orDie(produce), ({ bytes }) =>
              Effect.map(compressChunk(Option.getOrElse(bytes, () => Buffer.alloc(inputBytes)), compression), (frame) => frame.length)
            ).pipe(Effect.ensuring(release ?? Effect.void))
          )
        }
        yield* pool.end
      })
    )
    let stored = 0
    while (true) {
      const next = yield* pool.next
      if (Option.isNone(next)) break
      stored += next.value
    }
    return { inputBytes: size, size: stored, verified: "none", parts: 0 }
  })
)

/** The ledger step of archiving this file to this key. */
const step = { recoveryPointArn: `file:${source}`, action: `archive-file:${values.key ?? ""}` }

const manifestKey = `${values.key ?? ""}.manifest.ndjson`

/** The upload's settings, printed with the result: a benchmark's ceilings use the same ones. */
const partSchedule = partScheduleFor(compressedUpperBound(size))

const toS3 = (claim: Claim, previousUpload: UploadProgress | undefined) => archiveToS3({
  step: claim,
  target: { bucket: values.bucket ?? "", key: values.key ?? "", contentType: "application/zstd" },
  compression,
  partSchedule,
  resumable: false,
  previousUpload,
  openSource: open
}).pipe(
  Effect.tap((result) =>
    writeManifest({
      bucket: values.bucket ?? "",
      key: manifestKey,
      header: rawImageManifestHeader({
        snapshotId: "",
        recoveryPointArn: step.recoveryPointArn,
        archiveKey: values.key ?? "",
        compression,
        imageBytes: size,
        chunkBytes: CHUNK_BYTES,
        archiveBytes: result.size,
        composite: result.composite
      }),
      fragments: result.manifestFragments,
      archives: [{ key: values.key ?? "", parts: result.parts }]
    })
  )
)

/** The archive read back and verified against its manifest, timed on its own. */
const readBack = (result: ArchiveResult) =>
  Effect.timed(
    verifyArchive(
      { bucket: values.bucket ?? "", key: values.key ?? "", size: result.size, etag: result.etag, compression, uploadVerified: result.verified },
      manifestKey
    )
  ).pipe(Effect.map(([duration, verdict]) => ({ verified: verdict.verified, readBackSeconds: Duration.toMillis(duration) / 1000 })))

const claimThenArchive = Effect.gen(function* () {
  const ledger = yield* Ledger
  const { claim, record } = yield* ledger.claim(step, { leaseMs: 3_600_000, maxAttempts: 5 })
  const uploadStarted = process.hrtime.bigint()
  const result = yield* toS3(claim, record.upload)
  const uploadSeconds = Number(process.hrtime.bigint() - uploadStarted) / 1e9
  const checked = yield* readBack(result)
  const outcome = { inputBytes: result.inputBytes, size: result.size, parts: result.parts, partSize: partSchedule.first, partSchedule, uploadConcurrency: DEFAULT_UPLOAD_CONCURRENCY, uploadSeconds, ...checked }
  yield* ledger.finish(claim, { status: checked.verified === "content" ? "succeeded" : "failed", outcome })
  return outcome
})

const layer = Ledger.Live.pipe(
  Layer.provideMerge(Layer.mergeAll(S3.Live, DynamoDb.Live, ServiceSettings.fromEnv)),
  Layer.provideMerge(AwsConfig.fromEnv)
)

const started = process.hrtime.bigint()
const program = values.sink === "null" ? nullSink : Effect.provide(claimThenArchive, layer)
Effect.runPromise(program).then(
  (result) => {
    const seconds = Number(process.hrtime.bigint() - started) / 1e9
    const maxRssBytes = process.resourceUsage().maxRSS * 1024
    process.stdout.write(`${JSON.stringify({ ...result, seconds, maxRssBytes })}\n`)
  },
  (error: unknown) => {
    process.stderr.write(`archive-file failed: ${String(error)}\n`)
    process.exitCode = 1
  }
)
