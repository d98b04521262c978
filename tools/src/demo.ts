/**
 * `npm run demo`: the whole pipeline on the embedded emulator. It seeds real data (an ext4
 * filesystem written as an EBS snapshot through the EBS direct APIs, a DynamoDB table and its
 * backup, a PostgreSQL DB snapshot, an AMI of an EC2 instance), sends AWS Backup's "Recovery
 * Point State Change" for each, lets the five services do what the policy asks (archive in
 * both modes, a DR replica in another account and region, a Parquet export, a native RDS
 * export, an AMI export in direct mode), prints the reporter's report, and runs one restore
 * drill of the volume's direct-mode archive.
 *
 * The emulator keeps no blocks for the snapshots EC2 itself makes (CreateImage), so the AMI's
 * snapshot archive cannot read any data there: the demo says so before it starts, and shows
 * that step failing the way any failed step does (its reason, the source kept, a notification).
 */
import { mkdirSync, rmSync } from "node:fs"
import { join } from "node:path"
import { CreateAliasCommand, CreateKeyCommand } from "@aws-sdk/client-kms"
import { ListSnapshotBlocksCommand } from "@aws-sdk/client-ebs"
import { DescribeSnapshotsCommand } from "@aws-sdk/client-ec2"
import { GetObjectCommand } from "@aws-sdk/client-s3"
import { Effect, Schedule, Schema, type Layer, type Scope } from "effect"
import { AwsConfig, Ebs, Ec2, Kms, S3, awsCall } from "@backup-actions/aws"
import { ReportPublished } from "@backup-actions/contracts"
import type { PolicyDocument } from "@backup-actions/config"
import {
  EMULATOR_ACCOUNT,
  EMULATOR_REGION,
  drReplicateAction,
  drTopology,
  emulatorAwsConfig,
  localStateDir,
  provisionDr,
  tapBus,
  tapTopic
} from "@backup-actions/local"
import { DEMO_VOLUME_ARN, sendRecoveryPointCompleted, sendRecoveryPointEvent, snapshotArn, waitForStep } from "./backup-events"
import { runCli } from "./cli-process"
import { seedAmi, seedDynamoDbBackup, seedRdsSnapshot } from "./demo-seed"
import { ReportSummary, formatBytes } from "@backup-actions/reports"
import { formatRate, table } from "./report"
import { makeExt4Image, writeSourceTree } from "./seed"
import { putImageAsSnapshot } from "./snapshot-writer"
import { startLocalStack, type LocalStack } from "./stack"

const dr = drTopology()

/** The key RDS exports are encrypted with, named by its alias in the policy. */
const EXPORT_KEY_ALIAS = `arn:aws:kms:${EMULATOR_REGION}:${EMULATOR_ACCOUNT}:alias/backup-actions-demo-export`

const createExportKey = Effect.gen(function* () {
  const kms = yield* Kms
  const key = yield* awsCall("kms:CreateKey", (abortSignal) => kms.send(new CreateKeyCommand({ Description: "backup-actions demo: RDS exports" }), { abortSignal }))
  yield* awsCall("kms:CreateAlias", (abortSignal) =>
    kms.send(new CreateAliasCommand({ AliasName: "alias/backup-actions-demo-export", TargetKeyId: key.KeyMetadata?.KeyId ?? "" }), { abortSignal })
  )
})

const readText = (bucket: string, key: string) =>
  Effect.flatMap(S3, (s3) =>
    awsCall("s3:GetObject", async (abortSignal) => {
      const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }), { abortSignal })
      return object.Body === undefined ? "" : object.Body.transformToString()
    })
  )

const demoPolicy = (exportKeyArn: string): PolicyDocument => ({
  rules: [
    { name: "volume-mode", match: { resourceTypes: ["EBS"], vaults: ["archive-volume"] }, archive: { mode: "volume", compression: "zstd", deleteSourceAfterVerify: false } },
    {
      name: "ebs-archive-and-dr",
      match: { resourceTypes: ["EBS"] },
      archive: { mode: "direct", compression: "zstd", deleteSourceAfterVerify: false },
      replicate: drReplicateAction(dr)
    },
    { name: "dynamodb-parquet", match: { resourceTypes: ["DynamoDB"] }, export: { mode: "parquet", deleteSourceAfterVerify: false } },
    { name: "ami-direct", match: { resourceTypes: ["EC2"] }, export: { mode: "direct" } },
    {
      name: "rds-native",
      match: { resourceTypes: ["RDS"] },
      export: { mode: "native", kmsKeyId: exportKeyArn, iamRoleArn: `arn:aws:iam::${EMULATOR_ACCOUNT}:role/backup-actions-rds-export` }
    }
  ]
})

/**
 * Whether the EBS direct APIs can list a snapshot's blocks. On AWS they always can; the
 * emulator answers an internal error for snapshots it did not receive through them.
 */
const readableThroughEbsDirect = (snapshotId: string) =>
  Effect.flatMap(Ebs, (ebs) =>
    awsCall("ebs:ListSnapshotBlocks", (abortSignal) => ebs.send(new ListSnapshotBlocksCommand({ SnapshotId: snapshotId, MaxResults: 100 }), { abortSignal }), { retries: 0 })
  ).pipe(
    Effect.as(true),
    Effect.catchTag("AwsError", () => Effect.succeed(false))
  )

const snapshotState = (snapshotId: string) =>
  Effect.flatMap(Ec2, (ec2) =>
    awsCall("ec2:DescribeSnapshots", (abortSignal) => ec2.send(new DescribeSnapshotsCommand({ Filters: [{ Name: "snapshot-id", Values: [snapshotId] }] }), { abortSignal }))
  ).pipe(Effect.map((described) => described.Snapshots?.[0]?.State ?? "gone"))

/** What the reporter publishes to the topic for a failed step, as the topic delivers it. */
const FailureNotification = Schema.parseJson(Schema.Struct({ Subject: Schema.optional(Schema.String), Message: Schema.String }))

const ReportFile = Schema.parseJson(ReportSummary)
const PublishedReport = Schema.parseJson(
  Schema.Struct({ time: Schema.String, detail: Schema.Struct({ period: Schema.String, json: Schema.Struct({ bucket: Schema.String, key: Schema.String }), html: Schema.Struct({ bucket: Schema.String, key: Schema.String }) }) })
)

const say = (text: string): void => {
  process.stdout.write(`${text}\n`)
}

const shortName = (arn: string): string => arn.slice(Math.max(arn.lastIndexOf("/"), arn.lastIndexOf(":")) + 1)

const main = async (): Promise<number> => {
  const started = Date.now()
  const work = join(localStateDir(), "demo")
  rmSync(work, { recursive: true, force: true })
  mkdirSync(work, { recursive: true })
  say("backup-actions demo: the pipeline on the local AWS emulator\n")

  say("1/7 generating a source tree and an ext4 filesystem from it (mkfs.ext4 -d)")
  const tree = join(work, "tree")
  const image = join(work, "disk.img")
  writeSourceTree(tree)
  makeExt4Image(tree, image, 64)

  say("2/7 starting the emulator, provisioning the bus, queues, bucket, ledger, topic and a DR account, starting the five services")
  let local: LocalStack | undefined
  try {
    local = await startLocalStack({ name: "demo", policy: demoPolicy(EXPORT_KEY_ALIAS) })
    const stack = local
    const run = <A, E>(effect: Effect.Effect<A, E, Layer.Layer.Success<LocalStack["clients"]> | AwsConfig | Scope.Scope>) =>
      Effect.runPromise(Effect.scoped(effect.pipe(Effect.provide(stack.clients), Effect.provide(emulatorAwsConfig(stack.emulator.endpoint)))))
    await run(createExportKey)
    const provisioned = await run(provisionDr(dr))
    const reports = await run(tapBus(stack.stack.busName, ReportPublished.pattern(), "demo-reports"))
    const notifications = await run(tapTopic(stack.stack.notificationTopicArn, "demo-notifications"))
    say(`    emulator ${stack.emulator.endpoint}; DR account ${provisioned.destinationAccount} in ${provisioned.destinationRegion}; logs in ${join(localStateDir(), "logs")}`)

    say("3/7 seeding: the filesystem as an EBS snapshot (EBS direct APIs), a DynamoDB table and its backup, a PostgreSQL DB snapshot, an AMI")
    const snapshot = await run(putImageAsSnapshot(image, "backup-actions demo"))
    const dynamodb = await run(seedDynamoDbBackup("demo-orders", 500))
    const rds = await run(seedRdsSnapshot("demo-postgres"))
    const ami = await run(seedAmi("demo-web-server", { app: "web" }))
    say(`    ${snapshot.snapshotId}: ${formatBytes(snapshot.volumeBytes)} volume, ${snapshot.blocks} blocks of 512 KiB with data`)
    say(`    ${shortName(dynamodb.backupArn)}: 500 orders; ${shortName(rds.snapshotArn)}: DB snapshot`)
    say(`    ${ami.imageId}: CreateImage of ${ami.instanceId}, over ${ami.snapshotIds.join(", ")}`)
    const unreadable = new Set<string>()
    for (const snapshotId of ami.snapshotIds) {
      if (!(await run(readableThroughEbsDirect(snapshotId)))) unreadable.add(snapshotId)
    }
    if (unreadable.size > 0) {
      say(`    note: the emulator keeps no blocks for ${[...unreadable].join(", ")}, which EC2 made for the AMI, so its archive will fail;`)
      say("    that shows a failed step as any other: its reason in the ledger and the report, the source kept, a notification sent")
    }

    say('4/6 sending AWS Backup "Recovery Point State Change" (COMPLETED) for each, as AWS Backup would')
    await run(sendRecoveryPointCompleted({ snapshotId: snapshot.snapshotId, vault: "demo" }))
    await run(sendRecoveryPointCompleted({ snapshotId: snapshot.snapshotId, vault: "archive-volume" }))
    await run(sendRecoveryPointEvent({ recoveryPointArn: dynamodb.backupArn, resourceArn: dynamodb.tableArn, resourceType: "DynamoDB", vault: "demo" }))
    await run(sendRecoveryPointEvent({ recoveryPointArn: rds.snapshotArn, resourceArn: rds.instanceArn, resourceType: "RDS", vault: "demo" }))
    await run(sendRecoveryPointEvent({ recoveryPointArn: ami.imageArn, resourceArn: ami.instanceArn, resourceType: "EC2", vault: "demo" }))

    say("5/7 waiting for every step: archive (direct, volume), DR replica, Parquet export, RDS export, AMI export and its snapshots' archives")
    const ebs = snapshotArn(snapshot.snapshotId)
    const steps: ReadonlyArray<readonly [string, string]> = [
      [ebs, "archive:direct"],
      [ebs, "restore:volume"],
      [ebs, "archive:volume"],
      [ebs, `replicate:${dr.destinationAccount}:${dr.destinationRegion}`],
      [dynamodb.backupArn, "export:parquet"],
      [rds.snapshotArn, "export:native"],
      [ami.imageArn, "export:direct"],
      // The AMI's direct export hands each of its snapshots to the streamer's direct mode.
      ...ami.snapshotIds.map((snapshotId) => [snapshotArn(snapshotId), "archive:direct"] as const)
    ]
    const records = await Promise.all(steps.map(([arn, action]) => run(waitForStep(stack.stack.ledgerTable, arn, action, "10 minutes"))))
    const isExpectedFailure = (record: Record<string, unknown>, index: number): boolean =>
      record["status"] === "failed" && steps[index]?.[1] === "archive:direct" && [...unreadable].some((id) => steps[index]?.[0] === snapshotArn(id))

    say("6/7 waiting for the reporter's report of the run\n")
    // The reporter reports a run once it has been quiet for a moment. A step's event reaches it
    // just after the ledger shows the step finished, so wait for the report that has them all.
    const { report, summary, dayKey } = await run(
      Effect.gen(function* () {
        const published = yield* reports.drain(1)
        const runs = yield* Effect.forEach(published, (body) => Schema.decodeUnknown(PublishedReport)(body))
        const latest = runs.filter((event) => event.detail.period === "run").at(-1)
        if (latest === undefined) return yield* Effect.fail("no run report yet")
        const day = latest.detail.json.key.replace(/^reports\/runs\/[^/]+\//, `reports/daily/${new Date().toISOString().slice(0, 10)}/`)
        const daily = yield* Schema.decodeUnknown(ReportFile)(yield* readText(latest.detail.json.bucket, day))
        if (daily.entries.length < steps.length) return yield* Effect.fail("the report does not have every step yet")
        return { report: latest, summary: daily, dayKey: day }
      }).pipe(Effect.retry({ schedule: Schedule.spaced("1 second"), times: 90 }))
    )
    const rows = summary.entries.map((entry) => [
      entry.action,
      entry.status,
      shortName(entry.recoveryPoint),
      entry.bytesRead === undefined ? "-" : formatBytes(entry.bytesRead),
      entry.bytesStored === undefined ? "-" : formatBytes(entry.bytesStored),
      entry.durationMs === undefined ? "-" : `${(entry.durationMs / 1000).toFixed(1)} s`,
      entry.status === "failed" ? `FAILED: ${entry.reason ?? ""}` : entry.replicaAccount !== undefined ? `${entry.location ?? ""} (account ${entry.replicaAccount}, ${entry.replicaRegion ?? ""})` : (entry.location ?? "-")
    ])
    say("The reporter's report of the run:\n")
    say(table(["action", "status", "recovery point", "read", "stored", "took", "artifact"], rows))
    // Each archive in detail, from its ledger record: what was read and stored, and whether its content, read back, matched the source.
    const archives = records
      .filter((record, index) => record["status"] === "succeeded" && (steps[index]?.[1] ?? "").startsWith("archive:"))
      .map((record) => record["outcome"] ?? {})
      .map((outcome) => {
        const read = Number(outcome.bytesRead ?? 0)
        const stored = Number(outcome.bytesStored ?? 0)
        return [
          `${String(outcome.mode)} (${String(outcome.format ?? "-")})`,
          formatBytes(read),
          formatBytes(stored),
          stored > 0 ? `${(read / stored).toFixed(1)}:1` : "-",
          formatRate(read, Number(outcome.durationMs ?? 0)),
          outcome.verified === "content" ? "content read back matches the source" : `NOT verified: ${String(outcome.reason ?? "")}`,
          outcome.location === undefined ? "-" : `s3://${outcome.location.bucket}/${outcome.location.key}`
        ]
      })
    say("\nThe archives:\n")
    say(table(["mode", "read", "stored", "ratio", "throughput", "verification", "location"], archives))
    say(`\n${summary.total} outcomes: ${summary.succeeded} succeeded, ${summary.failed} failed; read ${formatBytes(summary.bytesRead)}, stored ${formatBytes(summary.bytesStored)}`)
    say(`report: s3://${report.detail.html.bucket}/${report.detail.html.key} (also JSON and CSV); today's: s3://${report.detail.json.bucket}/${dayKey.replace(/json$/, "html")}`)
    say("open an archive with: zstd -dc files.tar.zst | tar -tv   (manifests sit beside each archive)")
    const expected = records.filter(isExpectedFailure)
    if (expected.length > 0) {
      const notified = await run(Effect.flatMap(notifications.drain(5), (bodies) => Effect.forEach(bodies, (body) => Schema.decodeUnknown(FailureNotification)(body))))
      say("\nThe step the emulator cannot run (its EC2-made snapshots hold no blocks to read):")
      for (const [index, record] of records.entries()) {
        if (!isExpectedFailure(record, index)) continue
        const snapshotId = shortName(steps[index]?.[0] ?? "")
        say(`    ${steps[index]?.[1] ?? ""} of ${snapshotId}: failed: ${String(record["reason"] ?? "")}`)
        say(`    the source is kept (snapshot ${await run(snapshotState(snapshotId))}); notifications sent: ${notified.map((entry) => entry.Subject ?? "(no subject)").join("; ") || "none yet"}`)
      }
    }
    // A restore drill, as the scheduled `drill` command runs one: the direct-mode archive restored into a scratch snapshot, verified, deleted.
    const directRecord = records[0]
    const directLocation = directRecord?.["status"] === "succeeded" ? directRecord["outcome"]?.location : undefined
    let drillFailed = false
    if (directLocation !== undefined) {
      say(`\n7/7 a restore drill: the volume's direct-mode archive restored into a scratch EBS snapshot, checked against its manifest, then deleted\n`)
      const drill = await runCli(
        join(localStateDir(), "stack.json"),
        "drill",
        "--artifact",
        `s3://${String(directLocation.bucket)}/${String(directLocation.key)}`,
        "--resource",
        DEMO_VOLUME_ARN
      )
      say(drill.stdout.trimEnd())
      drillFailed = drill.status !== 0
      if (drillFailed) say(drill.stderr.trimEnd())
    }
    say(`finished in ${((Date.now() - started) / 1000).toFixed(1)} s`)
    const failed = records.filter((record, index) => record["status"] !== "succeeded" && !isExpectedFailure(record, index))
    if (drillFailed) return 1
    if (failed.length > 0 || summary.failed > expected.length) {
      say(`\n${Math.max(failed.length, summary.failed - expected.length)} step(s) did not succeed; see the service logs in ${join(localStateDir(), "logs")}`)
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
