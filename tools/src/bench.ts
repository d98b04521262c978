/**
 * `npm run bench`: the streamer's data path against the original job's, on the same emulator,
 * in the same run. For each input size it measures
 *   - baseline:  tar -cz (gzip -6) piped into one streaming lib-storage upload
 *   - streamer:  4 MiB chunks, zstd frames compressed in parallel, multipart with SHA-256 per part
 *   - null sink: the streamer's read and compression alone (no upload), the CPU-bound rate,
 *     against `zstd -3 -T0` over the same bytes (speed, and the size of what each wrote)
 *   - read-back: the streamer's content verification of what it uploaded (ranged GETs,
 *     zstd -d, each range's SHA-256 against the manifest), which runs before a source may go
 *   - direct mode: the same bytes as an EBS snapshot, archived by the running services in
 *     direct mode (GetSnapshotBlock, then S3) as AWS Backup's event asks
 *   - volume mode: an ext4 image of real files (BENCH_TREE, /usr/share by default), archived by
 *     the running services in volume mode, against `tar | zstd -3 -T0 > /dev/null` on the same
 *     filesystem (BENCH_VOLUME=0 leaves it out)
 * and the emulator's own ceilings, measured in the same run: its S3 ingest (random bytes, the
 * streamer's part size and parts in flight) and its GetSnapshotBlock rate (the streamer's reads
 * in flight, nothing done with the bytes). The emulator is one process on the same cores, so a
 * row that writes to S3 or reads blocks is read as the fraction of the ceiling that bounds it.
 * It prints throughput, its ratio to the baseline and to the ceiling, each process's peak RSS,
 * and the read-back's cost in seconds per GiB.
 * Sizes in GiB come from BENCH_SIZES_GIB (default "1,4").
 */
import { execFileSync } from "node:child_process"
import { availableParallelism } from "node:os"
import { mkdirSync, rmSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { Effect, type Layer, type Scope } from "effect"
import type { PolicyDocument } from "@backup-actions/config"
import { localStateDir, workspaceRoot } from "@backup-actions/local"
import { sendRecoveryPointCompleted, snapshotArn, waitForStep } from "./backup-events"
import { logLineTimes, peakRss, runJson, zstdCli, type Measured } from "./bench-support"
import { benchVolumeMode, VOLUME_BENCH_VAULT } from "./bench-volume"
import { writeDiskLikeInput } from "./disk-like-input"
import { formatBytes, table } from "./report"
import { putImageAsSnapshot } from "./snapshot-writer"
import { SERVICE_NODE_FLAGS, startLocalStack, type LocalStack } from "./stack"

const MiB = 1024 * 1024
const sizes = (process.env["BENCH_SIZES_GIB"] ?? "1,4").split(",").map((value) => Number(value.trim())).filter((value) => value > 0)

/**
 * The S3 ceiling uploads with the part size and the parts in flight that the streamer's run
 * printed. The direct-mode read settings are not printed by any measuring entry, so the EBS
 * ceiling repeats them: one chunk being read per core (COMPRESS_CONCURRENCY, at least 2), each
 * chunk's eight 512 KiB blocks at once.
 */
const BLOCKS_PER_CHUNK = 8
const BLOCK_READS_IN_FLIGHT = BLOCKS_PER_CHUNK * Math.max(2, availableParallelism())

const VOLUME_ID = "vol-0be0c4000000000000"
const policy: PolicyDocument = {
  rules: [
    { name: "ebs-volume", match: { resourceTypes: ["EBS"], vaults: [VOLUME_BENCH_VAULT] }, archive: { mode: "volume", compression: "zstd", deleteSourceAfterVerify: false } },
    { name: "ebs-direct", match: { resourceTypes: ["EBS"] }, archive: { mode: "direct", compression: "zstd", deleteSourceAfterVerify: false } }
  ]
}

/**
 * Direct mode's upload and read-back, apart: the ledger's outcome has only the step's whole
 * duration, so the times come from the streamer's log, between its lines "archiving <snapshot>
 * directly", "<snapshot>: 100% read" (the last part recorded) and "content verified".
 */
const directPhases = (logFile: string, snapshotId: string): { readonly uploadSeconds: number; readonly readBackSeconds: number } | undefined => {
  const at = logLineTimes(logFile, snapshotId)
  const started = at(`archiving ${snapshotId} directly`)
  const read = at(`${snapshotId}: 100% read`)
  const verified = at(`/${snapshotId}/direct/disk.img.zst: content verified`)
  if (started === undefined || read === undefined || verified === undefined) return undefined
  return { uploadSeconds: (read - started) / 1000, readBackSeconds: (verified - read) / 1000 }
}

const ratio = (value: number): string => `${value.toFixed(2)}`

const main = async (): Promise<void> => {
  // The streamer runs as it ships: bundled, on plain Node.js.
  execFileSync(process.execPath, ["tools/build/bundle.mjs", "apps/streamer"], { cwd: workspaceRoot(), stdio: "ignore" })
  const archiveFile = join(workspaceRoot(), "dist", "apps", "streamer", "archive-file.js")
  const dir = join(localStateDir(), "bench")
  mkdirSync(dir, { recursive: true })
  // The services are provisioned but started only for the direct-mode row, so that their polling
  // does not share the emulator with the other rows.
  const local: LocalStack = await startLocalStack({ name: "bench", policy, services: ["restorer", "streamer"], startServices: false })
  const run = <A, E>(effect: Effect.Effect<A, E, Layer.Layer.Success<LocalStack["clients"]> | Scope.Scope>) =>
    Effect.runPromise(Effect.scoped(Effect.provide(effect, local.clients)))
  const env = { ...local.environment("streamer") }
  const bucket = local.stack.artifactBucket
  const node = process.execPath
  const rows: Array<Array<string>> = []
  const results: Array<Record<string, unknown>> = []
  const readBack: Array<string> = []
  const ceilings: Array<string> = []
  try {
    for (const gib of sizes) {
      const input = join(dir, `input-${gib}GiB.img`)
      const bytes = gib * 1024 * MiB
      process.stdout.write(`generating ${gib} GiB of disk-like input...\n`)
      writeDiskLikeInput(input, bytes)
      process.stdout.write(`baseline: tar -cz | one streaming upload...\n`)
      const baselineStart = process.hrtime.bigint()
      const baseline = await runJson(
        "bash",
        ["-o", "pipefail", "-c", `tar -czf - -C '${dir}' '${`input-${gib}GiB.img`}' | '${node}' --import tsx tools/src/bench-baseline-upload.ts --bucket '${bucket}' --key 'bench/baseline-${gib}.tar.gz'`],
        env
      )
      const baselineSeconds = Number(process.hrtime.bigint() - baselineStart) / 1e9
      process.stdout.write(`streamer: parallel zstd frames, multipart upload...\n`)
      const streamer = await runJson(node, [...SERVICE_NODE_FLAGS, archiveFile, "--source", input, "--bucket", bucket, "--key", `bench/streamer-${gib}.img.zst`], env)
      if (streamer.verified !== "content") throw new Error(`the streamer's archive of ${gib} GiB was not verified to its content (${String(streamer.verified)})`)
      process.stdout.write(`ceiling: S3 multipart ingest of as many random bytes as the streamer stored...\n`)
      const partSize = streamer.partSize ?? 8 * MiB
      const uploadConcurrency = streamer.uploadConcurrency ?? 2
      const s3Ceiling = await runJson(
        node,
        ["--import", "tsx", "tools/src/bench-s3-ceiling.ts", "--bucket", bucket, "--key", `bench/s3-ceiling-${gib}`, "--bytes", String(streamer.size), "--part-size", String(partSize), "--concurrency", String(uploadConcurrency)],
        env
      )
      process.stdout.write(`streamer with a null sink...\n`)
      const nullSink = await runJson(node, [...SERVICE_NODE_FLAGS, archiveFile, "--source", input, "--sink", "null"], env)
      process.stdout.write(`zstd -3 -T0 over the same bytes...\n`)
      const zstd = await zstdCli(input)
      process.stdout.write(`writing the input as an EBS snapshot...\n`)
      const snapshot = await run(putImageAsSnapshot(input, `backup-actions bench ${gib} GiB`))
      rmSync(input, { force: true })
      process.stdout.write(`ceiling: GetSnapshotBlock of every block, ${BLOCK_READS_IN_FLIGHT} at once...\n`)
      const ebsCeiling = await runJson(node, ["--import", "tsx", "tools/src/bench-ebs-ceiling.ts", "--snapshot-id", snapshot.snapshotId, "--concurrency", String(BLOCK_READS_IN_FLIGHT)], env)
      process.stdout.write(`direct mode: the services archive the snapshot as AWS Backup's event asks...\n`)
      local.startService("restorer")
      const streamerService = local.startService("streamer")
      const recoveryPoint = snapshotArn(snapshot.snapshotId)
      await run(sendRecoveryPointCompleted({ snapshotId: snapshot.snapshotId, vault: "bench", volumeId: VOLUME_ID }))
      const archived = await run(waitForStep(local.stack.ledgerTable, recoveryPoint, "archive:direct", "60 minutes"))
      const directRss = peakRss(streamerService.pid)
      await local.stopService("streamer")
      await local.stopService("restorer")
      const outcome = (archived["outcome"] ?? {}) as { readonly durationMs?: number; readonly bytesRead?: number; readonly bytesStored?: number; readonly verified?: string }
      if (archived["status"] !== "succeeded" || outcome.verified !== "content") {
        throw new Error(`the direct-mode archive of ${gib} GiB did not succeed verified to its content: ${String(archived["reason"] ?? outcome.verified)}`)
      }
      const directSeconds = (outcome.durationMs ?? 0) / 1000
      const phases = directPhases(join(localStateDir(), "logs", "bench-streamer.log"), snapshot.snapshotId)
      const direct: Measured = { size: outcome.bytesStored ?? 0, seconds: directSeconds, maxRssBytes: directRss, uploadSeconds: phases?.uploadSeconds ?? directSeconds }
      const directImage = outcome.bytesRead ?? snapshot.volumeBytes

      const rate = (seconds: number, of: number = bytes) => of / MiB / seconds
      const base = rate(baselineSeconds)
      const uploadSeconds = streamer.uploadSeconds ?? streamer.seconds
      const readBackSeconds = streamer.readBackSeconds ?? 0
      const directUpload = direct.uploadSeconds ?? directSeconds
      // Ceilings, in the units of what each sees: S3 stored bytes, EBS the image's bytes (the
      // blocks listed; holes cost neither the ceiling nor the streamer a read).
      const s3Rate = rate(s3Ceiling.seconds, s3Ceiling.bytes ?? s3Ceiling.size)
      const ebsImageRate = rate(ebsCeiling.seconds, ebsCeiling.imageBytes ?? directImage)
      // Direct mode against the lower of the two, both as image bytes per second: S3's ingest
      // carries the image at its compression ratio.
      const s3ImageRate = s3Rate * (directImage / Math.max(1, direct.size))
      const directRate = rate(directUpload, directImage)
      const directBound = Math.min(ebsImageRate, s3ImageRate)
      const sharedBound = 1 / (1 / ebsImageRate + 1 / s3ImageRate)
      // The emulator runs on the same cores as the streamer, so the streamer's compression and the
      // emulator's own work take turns at them: their times added up are a bound too.
      const inTurn = {
        streamer: nullSink.seconds + s3Ceiling.seconds * (streamer.size / Math.max(1, s3Ceiling.bytes ?? 0)),
        direct: nullSink.seconds + ebsCeiling.seconds + s3Ceiling.seconds * (direct.size / Math.max(1, s3Ceiling.bytes ?? 0))
      }
      const ofCeiling = {
        streamer: rate(uploadSeconds, streamer.size) / s3Rate,
        direct: directRate / directBound
      }
      const vsZstd = { speed: zstd.seconds / nullSink.seconds, size: nullSink.size / zstd.size }
      type Bound = { readonly ceiling: string; readonly ofCeiling: number } | undefined
      const variants: ReadonlyArray<readonly [string, Measured, number, number, Bound, typeof vsZstd | undefined]> = [
        ["baseline (tar -cz | upload)", baseline, baselineSeconds, bytes, undefined, undefined],
        ["streamer (zstd, multipart)", streamer, uploadSeconds, bytes, { ceiling: "S3 ingest", ofCeiling: ofCeiling.streamer }, undefined],
        ["streamer, null sink", nullSink, nullSink.seconds, bytes, undefined, vsZstd],
        ["read-back, content verified", streamer, readBackSeconds, bytes, undefined, undefined],
        [
          "direct mode (EBS direct, S3)",
          direct,
          directUpload,
          directImage,
          { ceiling: ebsImageRate <= s3ImageRate ? "EBS read" : "S3 ingest", ofCeiling: ofCeiling.direct },
          undefined
        ]
      ]
      for (const [name, measured, seconds, of, bound, zstdRatios] of variants) {
        rows.push([
          `${gib} GiB`,
          name,
          seconds.toFixed(1),
          rate(seconds, of).toFixed(1),
          `${(rate(seconds, of) / base).toFixed(1)}x`,
          bound?.ceiling ?? "-",
          bound === undefined ? "-" : ratio(bound.ofCeiling),
          zstdRatios === undefined ? "-" : `${ratio(zstdRatios.speed)}x speed, ${ratio(zstdRatios.size)}x size`,
          formatBytes(measured.size),
          formatBytes(measured.maxRssBytes)
        ])
        results.push({
          inputGiB: gib,
          variant: name,
          seconds,
          mibPerSecond: rate(seconds, of),
          ratioToBaseline: rate(seconds, of) / base,
          ...bound,
          ...(zstdRatios === undefined ? {} : { speedVsZstdCli: zstdRatios.speed, sizeVsZstdCli: zstdRatios.size }),
          storedBytes: measured.size,
          peakRssBytes: measured.maxRssBytes
        })
      }
      readBack.push(`${gib} GiB: read-back ${(readBackSeconds / gib).toFixed(1)} s per GiB, ${((readBackSeconds / uploadSeconds) * 100).toFixed(0)}% of the upload's time`)
      results.push({ inputGiB: gib, variant: "read-back cost", secondsPerGiB: readBackSeconds / gib, ratioToUpload: readBackSeconds / uploadSeconds })
      ceilings.push(
        [
          `${gib} GiB: S3 ingest ${s3Rate.toFixed(1)} MiB/s (${formatBytes(s3Ceiling.bytes ?? 0)} of random bytes in ${formatBytes(partSize)} parts, ${uploadConcurrency} at once, ${s3Ceiling.seconds.toFixed(1)} s)`,
          `${gib} GiB: GetSnapshotBlock ${rate(ebsCeiling.seconds, ebsCeiling.bytes ?? 0).toFixed(1)} MiB/s of blocks, ${ebsImageRate.toFixed(1)} MiB/s of image (${String(ebsCeiling.blocks)} blocks of a ${formatBytes(ebsCeiling.imageBytes ?? 0)} snapshot, ${BLOCK_READS_IN_FLIGHT} at once, ${ebsCeiling.seconds.toFixed(1)} s)`,
          `${gib} GiB: direct mode ${directRate.toFixed(1)} MiB/s of image; its ceilings as image bytes: EBS read ${ebsImageRate.toFixed(1)}, S3 ingest ${s3ImageRate.toFixed(1)} (at its ${(directImage / Math.max(1, direct.size)).toFixed(2)}:1 compression); both share the emulator's one process, and against the two in turn (${sharedBound.toFixed(1)} MiB/s) it reaches ${ratio(directRate / sharedBound)}`,
          `${gib} GiB: on shared cores, the null sink and the S3 ceiling in turn take ${inTurn.streamer.toFixed(1)} s, and the streamer's upload reaches ${ratio(inTurn.streamer / uploadSeconds)} of that; the null sink, the GetSnapshotBlock and the S3 ceilings in turn take ${inTurn.direct.toFixed(1)} s, and direct mode reaches ${ratio(inTurn.direct / directUpload)}`,
          `${gib} GiB: direct mode's step took ${directSeconds.toFixed(1)} s in the ledger; ${phases === undefined ? "the streamer's log did not separate upload and read-back, so its row is the whole step" : `upload ${phases.uploadSeconds.toFixed(1)} s, read-back ${phases.readBackSeconds.toFixed(1)} s (from the streamer's log)`}`,
          `${gib} GiB: zstd -3 -T0 ${zstd.seconds.toFixed(1)} s, ${rate(zstd.seconds).toFixed(1)} MiB/s, ${formatBytes(zstd.size)}`
        ].join("\n")
      )
      results.push(
        { inputGiB: gib, variant: "ceiling: S3 ingest", seconds: s3Ceiling.seconds, bytes: s3Ceiling.bytes, mibPerSecond: s3Rate, partSize, concurrency: uploadConcurrency },
        {
          inputGiB: gib,
          variant: "ceiling: GetSnapshotBlock",
          seconds: ebsCeiling.seconds,
          bytes: ebsCeiling.bytes,
          imageBytes: ebsCeiling.imageBytes,
          mibPerSecondOfImage: ebsImageRate,
          concurrency: BLOCK_READS_IN_FLIGHT
        },
        { inputGiB: gib, variant: "direct mode, whole step", seconds: directSeconds, ...(phases === undefined ? {} : phases), sharedCeilingMiBPerSecond: sharedBound },
        {
          inputGiB: gib,
          variant: "work in turn on shared cores",
          streamerBoundSeconds: inTurn.streamer,
          streamerOfBound: inTurn.streamer / uploadSeconds,
          directBoundSeconds: inTurn.direct,
          directOfBound: inTurn.direct / directUpload
        },
        { inputGiB: gib, variant: "zstd -3 -T0", seconds: zstd.seconds, mibPerSecond: rate(zstd.seconds), storedBytes: zstd.size }
      )
    }
    if (process.env["BENCH_VOLUME"] !== "0") {
      const volume = await benchVolumeMode(local, run, { dir, streamerLog: join(localStateDir(), "logs", "bench-streamer.log"), archiveFile, env })
      const input = `real files (${volume.tree})`
      const rate = volume.fileBytes / MiB / volume.streamerSeconds
      const ofReference = volume.referenceSeconds / volume.streamerSeconds
      const onImage = { speed: volume.imageZstd.seconds / volume.imageNullSink.seconds, size: volume.imageNullSink.size / volume.imageZstd.size }
      rows.push(
        [
          `ext4 image of ${volume.tree}`,
          "streamer, null sink",
          volume.imageNullSink.seconds.toFixed(1),
          (volume.imageBytes / MiB / volume.imageNullSink.seconds).toFixed(1),
          "-",
          "-",
          "-",
          `${ratio(onImage.speed)}x speed, ${ratio(onImage.size)}x size`,
          formatBytes(volume.imageNullSink.size),
          formatBytes(volume.imageNullSink.maxRssBytes)
        ],
        [input, "reference: tar | zstd -3 -T0 > /dev/null", volume.referenceSeconds.toFixed(1), (volume.fileBytes / MiB / volume.referenceSeconds).toFixed(1), "-", "-", "-", "-", "-", "-"],
        [
          input,
          "volume mode (mount, tar, S3)",
          volume.streamerSeconds.toFixed(1),
          rate.toFixed(1),
          "-",
          "tar | zstd -3 -T0",
          ratio(ofReference),
          "-",
          formatBytes(volume.storedBytes),
          formatBytes(volume.peakRssBytes)
        ]
      )
      ceilings.push(
        `${input}: ${volume.entries} entries, ${formatBytes(volume.fileBytes)} in files, a ${formatBytes(volume.imageBytes)} volume; the streamer's tar, compression and upload (manifest made from the same stream) took ${volume.streamerSeconds.toFixed(1)} s, ${ratio(ofReference)} of the speed of tar | zstd -3 -T0 on the same filesystem (${volume.referenceSeconds.toFixed(1)} s, no upload); the whole step (volume restored, mounted, archived, read back) ${volume.stepSeconds.toFixed(1)} s`
      )
      results.push({ input, variant: "volume mode", ...volume, ofReference, nullSinkOnImage: { speedVsZstdCli: onImage.speed, sizeVsZstdCli: onImage.size } })
    }
  } finally {
    await local.stop()
  }
  const cpu = execFileSync("sh", ["-c", "nproc; grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"]).toString().trim().split("\n")
  process.stdout.write(
    `\n${table(["input", "variant", "seconds", "MiB/s", "vs baseline", "ceiling", "of ceiling", "vs zstd CLI", "stored", "peak RSS"], rows)}\n`
  )
  process.stdout.write(`\n${readBack.join("\n")}\n`)
  process.stdout.write(`\nCeilings, measured in the same run:\n${ceilings.join("\n")}\n`)
  process.stdout.write(
    [
      "",
      "MiB/s is input (image) bytes per second; the S3 and direct-mode rows' seconds are the upload alone, without the read-back.",
      "of ceiling: the row's rate over the ceiling's, in the ceiling's units: S3 sees compressed bytes, so the file-to-S3 row compares",
      "  stored bytes per second with the S3 ingest ceiling's; direct mode compares image bytes per second with the lower of the",
      "  GetSnapshotBlock rate (image bytes) and the S3 ingest rate carried over to image bytes at the row's compression ratio.",
      "vs zstd CLI: the null sink's speed over `zstd -3 -T0`'s on the same bytes (above 1 is faster), and its stored size over the CLI's.",
      `${cpu[0]} cores,${cpu[1] ?? ""}; peak RSS is the uploading process's (the baseline's tar and gzip are separate processes; direct mode's is`,
      "  the streamer service's, run through tsx, since it started)."
    ].join("\n") + "\n"
  )
  writeFileSync(join(dir, "results.json"), `${JSON.stringify(results, null, 2)}\n`)
}

main().catch((error: unknown) => {
  process.stderr.write(`bench failed: ${error instanceof Error ? error.message : String(error)}\n`)
  process.exitCode = 1
})
