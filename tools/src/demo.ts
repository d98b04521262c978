/**
 * `npm run demo`: the whole EBS archive pipeline on the embedded emulator. It seeds an ext4
 * filesystem as an EBS snapshot through the EBS direct APIs, sends AWS Backup's "Recovery
 * Point State Change" for it twice (a vault whose policy asks for direct mode, and one that
 * asks for volume mode), waits for both archives and prints what happened to each.
 */
import { mkdirSync, rmSync } from "node:fs"
import { join } from "node:path"
import { Effect, type Layer, type Scope } from "effect"
import type { Policy } from "@backup-actions/config"
import { localStateDir } from "@backup-actions/local"
import { sendRecoveryPointCompleted, snapshotArn, waitForStep } from "./backup-events"
import { formatBytes, formatRate, table } from "./report"
import { makeExt4Image, writeSourceTree } from "./seed"
import { putImageAsSnapshot } from "./snapshot-writer"
import { startLocalStack, type LocalStack } from "./stack"

const DEMO_POLICY: Policy = {
  rules: [
    { name: "volume-mode", match: { resourceTypes: ["EBS"], vaults: ["archive-volume"] }, archive: { mode: "volume", compression: "zstd", deleteSourceAfterVerify: false } },
    { name: "direct-mode", match: { resourceTypes: ["EBS"] }, archive: { mode: "direct", compression: "zstd", deleteSourceAfterVerify: false } }
  ]
}

const say = (text: string): void => {
  process.stdout.write(`${text}\n`)
}

const main = async (): Promise<number> => {
  const started = Date.now()
  const work = join(localStateDir(), "demo")
  rmSync(work, { recursive: true, force: true })
  mkdirSync(work, { recursive: true })
  say("backup-actions demo: the EBS archive pipeline on the local AWS emulator\n")

  say("1/5 generating a source tree and an ext4 filesystem from it (mkfs.ext4 -d)")
  const tree = join(work, "tree")
  const image = join(work, "disk.img")
  writeSourceTree(tree)
  makeExt4Image(tree, image, 64)

  say("2/5 starting the emulator, provisioning the bus, queues, bucket and ledger, starting the services")
  let local: LocalStack | undefined
  try {
    local = await startLocalStack({ name: "demo", policy: DEMO_POLICY })
    const stack = local
    const run = <A, E>(effect: Effect.Effect<A, E, Layer.Layer.Success<LocalStack["clients"]> | Scope.Scope>) =>
      Effect.runPromise(Effect.scoped(Effect.provide(effect, stack.clients)))
    say(`    emulator ${stack.emulator.endpoint}; logs in ${join(localStateDir(), "logs")}`)

    say("3/5 writing the filesystem as an EBS snapshot through the EBS direct APIs")
    const snapshot = await run(putImageAsSnapshot(image, "backup-actions demo"))
    say(`    ${snapshot.snapshotId}: ${formatBytes(snapshot.volumeBytes)} volume, ${snapshot.blocks} blocks of 512 KiB with data`)

    say('4/5 sending AWS Backup "Recovery Point State Change" (COMPLETED) for vaults archive-direct and archive-volume')
    await run(sendRecoveryPointCompleted({ snapshotId: snapshot.snapshotId, vault: "archive-direct" }))
    await run(sendRecoveryPointCompleted({ snapshotId: snapshot.snapshotId, vault: "archive-volume" }))

    say("5/5 waiting for Archive Completed from both\n")
    const arn = snapshotArn(snapshot.snapshotId)
    const records = await Promise.all(
      ["archive:direct", "archive:volume"].map((action) => run(waitForStep(stack.stack.ledgerTable, arn, action, "10 minutes")))
    )
    const rows = records.map((record) => {
      const outcome = record["outcome"] ?? {}
      const read = Number(outcome.bytesRead ?? 0)
      const stored = Number(outcome.bytesStored ?? 0)
      return [
        `${String(outcome.mode)} (${String(outcome.format ?? "-")})`,
        String(record["status"]),
        formatBytes(read),
        formatBytes(stored),
        stored > 0 ? `${(read / stored).toFixed(1)}:1` : "-",
        formatRate(read, Number(outcome.durationMs ?? 0)),
        outcome.verified === true ? "verified (SHA-256 composite matches S3)" : `NOT verified: ${String(record["reason"] ?? "")}`,
        outcome.location === undefined ? "-" : `s3://${outcome.location.bucket}/${outcome.location.key}`
      ]
    })
    say(table(["mode", "status", "read", "stored", "ratio", "throughput", "verification", "location"], rows))
    const failed = records.filter((record) => record["status"] !== "succeeded" || record["outcome"]?.verified !== true)
    say(`\nmanifests sit beside each archive (manifest.ndjson); open an archive with: zstd -dc files.tar.zst | tar -tv`)
    say(`finished in ${((Date.now() - started) / 1000).toFixed(1)} s`)
    if (failed.length > 0) {
      say(`\n${failed.length} archive(s) did not succeed; see the service logs in ${join(localStateDir(), "logs")}`)
      return 1
    }
    return 0
  } finally {
    await local?.stop()
  }
}

main().then(
  (code) => {
    process.exitCode = code
  },
  (error: unknown) => {
    process.stderr.write(`demo failed: ${error instanceof Error ? error.message : String(error)}\n`)
    process.exitCode = 1
  }
)
