import { execFileSync } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { CreateDBInstanceCommand, CreateDBSnapshotCommand, DescribeDBInstancesCommand, DescribeDBSnapshotsCommand } from "@aws-sdk/client-rds"
import { GetParameterCommand } from "@aws-sdk/client-ssm"
import { Effect, Exit, Fiber, Scope } from "effect"
import { Rds, Ssm, awsCall } from "@backup-actions/aws"
import {
  EMULATOR_ACCOUNT,
  EMULATOR_REGION,
  localStateDir,
  mariadbServer,
  mariadbTableFingerprints,
  postgresServer,
  seedMariadbShop,
  seedShop,
  startDbServer,
  syncMasterPasswords,
  tableFingerprints,
  type DbServer
} from "@backup-actions/local"
import { restoredPasswordParameter, type PolicyDocument } from "@backup-actions/config"
import { sendRecoveryPointEvent, waitForStep } from "./backup-events"
import { startLocalStack, type LocalStack } from "./stack"
import { downloadWithAwsCli, runOn, type StackServices } from "./test-support"

const NAME = "db-dump-test"
const MASTER_USER = "dbadmin"
// The password the snapshot was taken with: a restored instance keeps it until the restorer sets its own.
const SNAPSHOT_PASSWORD = "snapshot-era-password-1"

// instanceClass left out: the restorer's default applies.
const policy: PolicyDocument = {
  rules: [{ name: "rds-dump", match: { resourceTypes: ["RDS"] }, archive: { mode: "dump" } }]
}

let local: LocalStack
/** The local database servers' scope: closing it stops them and removes their data. */
const servers = Effect.runSync(Scope.make())
let postgres: DbServer
let mariadb: DbServer
let passwordSyncs: ReadonlyArray<Fiber.RuntimeFiber<unknown, unknown>> = []
let scratch: string
/** The passwords the PostgreSQL stand-in applied: those of restored PostgreSQL instances. */
const passwordsSet: Array<string> = []
/** The passwords the MariaDB stand-in applied: those of restored MariaDB instances. */
const mariadbPasswordsSet: Array<string> = []

const run = <A, E>(effect: Effect.Effect<A, E, StackServices>) => runOn(local, effect)

/** Runs SQL work against a local server (which needs no AWS clients). */
const onServer = <A, E>(effect: Effect.Effect<A, E>) => Effect.runPromise(effect)

/** A DB instance and a manual snapshot of it, as AWS Backup leaves one behind; returns the snapshot ARN. */
const createSnapshot = (instance: string, engine: string) =>
  Effect.gen(function* () {
    const rds = yield* Rds
    yield* awsCall("rds:CreateDBInstance", (abortSignal) =>
      rds.send(
        new CreateDBInstanceCommand({
          DBInstanceIdentifier: instance,
          DBInstanceClass: "db.t3.micro",
          Engine: engine,
          AllocatedStorage: 20,
          MasterUsername: MASTER_USER,
          MasterUserPassword: SNAPSHOT_PASSWORD,
          ...(engine.startsWith("sqlserver") ? { LicenseModel: "license-included" } : { DBName: "shop" }),
          // moto 5.2.5 has no default version for MariaDB (a KeyError, answered as HTTP 500).
          ...(engine === "mariadb" ? { EngineVersion: "10.11.9" } : {})
        }),
        { abortSignal }
      )
    )
    const snapshot = yield* awsCall("rds:CreateDBSnapshot", (abortSignal) =>
      rds.send(new CreateDBSnapshotCommand({ DBInstanceIdentifier: instance, DBSnapshotIdentifier: `${instance}-snapshot` }), { abortSignal })
    )
    return snapshot.DBSnapshot?.DBSnapshotArn ?? ""
  })

const sendSnapshot = (snapshotArn: string, instance: string) =>
  sendRecoveryPointEvent({
    recoveryPointArn: snapshotArn,
    resourceArn: `arn:aws:rds:${EMULATOR_REGION}:${EMULATOR_ACCOUNT}:db:${instance}`,
    resourceType: "RDS",
    vault: "db-dumps"
  })

const snapshotExists = (identifier: string) =>
  Effect.flatMap(Rds, (rds) =>
    awsCall("rds:DescribeDBSnapshots", (abortSignal) => rds.send(new DescribeDBSnapshotsCommand({ DBSnapshotIdentifier: identifier }), { abortSignal }))
  ).pipe(Effect.map((found) => (found.DBSnapshots ?? []).length === 1))

/** Polls until a lookup answers "not found", for at most 20 seconds; true when it did. */
const becomesMissing = <E extends { readonly kind: string }, R>(lookup: Effect.Effect<unknown, E, R>) =>
  Effect.gen(function* () {
    for (let attempt = 0; attempt < 100; attempt += 1) {
      const gone = yield* lookup.pipe(
        Effect.as(false),
        Effect.catchIf(
          (error) => error.kind === "not-found",
          () => Effect.succeed(true)
        )
      )
      if (gone) return true
      yield* Effect.sleep("200 millis")
    }
    return false
  })

/** Runs a password sync against the stack's emulator until the tests end. */
const forkOnStack = (effect: Effect.Effect<unknown, unknown, Rds | Ssm>) => Effect.runFork(Effect.scoped(Effect.provide(effect, local.clients)))

beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), "db-dump-test-"))
  postgres = await onServer(Scope.extend(startDbServer(postgresServer, { name: NAME }), servers))
  await onServer(seedShop(postgres, { database: "shop", owner: MASTER_USER, password: SNAPSHOT_PASSWORD }))
  mariadb = await onServer(Scope.extend(startDbServer(mariadbServer, { name: NAME }), servers))
  await onServer(seedMariadbShop(mariadb, { database: "shop", owner: MASTER_USER, password: SNAPSHOT_PASSWORD }))
  local = await startLocalStack({ name: NAME, policy, services: ["restorer", "streamer"], localPostgres: postgres, localMariadb: mariadb })
  passwordSyncs = [
    forkOnStack(syncMasterPasswords(postgres, { user: MASTER_USER, onPassword: (password) => passwordsSet.push(password) })),
    forkOnStack(syncMasterPasswords(mariadb, { user: MASTER_USER, onPassword: (password) => mariadbPasswordsSet.push(password) }))
  ]
})

afterAll(async () => {
  await Promise.all(passwordSyncs.map((fiber) => Effect.runPromise(Fiber.interrupt(fiber))))
  await local?.stop()
  await onServer(Scope.close(servers, Exit.void))
  rmSync(scratch, { recursive: true, force: true })
})

/**
 * Sends the snapshot's event and waits for its restore and its dump, checking what every dump
 * must show: a restore announced by parameter name only (never a password), and a verified SQL
 * archive of the restored instance that kept the source.
 */
const restoredAndDumped = async (snapshotArn: string, instance: string, engine: string, passwords: ReadonlyArray<string>) => {
  await run(sendSnapshot(snapshotArn, instance))
  const restore = await run(waitForStep(local.stack.ledgerTable, snapshotArn, "restore:dump", "3 minutes"))
  const record = await run(waitForStep(local.stack.ledgerTable, snapshotArn, "archive:dump", "3 minutes"))
  assert.strictEqual(restore["status"], "succeeded", String(restore["reason"]))
  const database = restore["outcome"].database
  assert.strictEqual(database.engine, engine)
  assert.strictEqual(database.user, MASTER_USER)
  assert.strictEqual(database.passwordParameter, restoredPasswordParameter(database.instanceId))
  assert.isAbove(passwords.length, 0)
  for (const password of passwords) assert.notInclude(JSON.stringify(restore["outcome"]), password)
  assert.strictEqual(record["status"], "succeeded", String(record["reason"]))
  const outcome = record["outcome"]
  assert.strictEqual(outcome.mode, "dump")
  assert.strictEqual(outcome.format, "sql")
  assert.strictEqual(outcome.verified, "content")
  assert.isFalse(outcome.sourceDeleted)
  assert.strictEqual(outcome.restoredInstanceId, database.instanceId)
  assert.strictEqual(outcome.location.key, `archives/rds/${instance}-snapshot/dump/`)
  return { database, outcome }
}

/** After a dump: the restored instance and its password are gone, the snapshot is kept, and no service logged a password. */
const cleanedUpWithoutLeaks = async (
  database: { readonly instanceId: string; readonly passwordParameter: string },
  snapshotName: string,
  passwords: ReadonlyArray<string>,
  streamerSays: string
) => {
  const instanceGone = await run(
    becomesMissing(
      Effect.flatMap(Rds, (rds) =>
        awsCall("rds:DescribeDBInstances", (abortSignal) => rds.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: database.instanceId }), { abortSignal }))
      )
    )
  )
  assert.isTrue(instanceGone)
  const parameterGone = await run(
    becomesMissing(
      Effect.flatMap(Ssm, (ssm) => awsCall("ssm:GetParameter", (abortSignal) => ssm.send(new GetParameterCommand({ Name: database.passwordParameter }), { abortSignal })))
    )
  )
  assert.isTrue(parameterGone)
  assert.isTrue(await run(snapshotExists(snapshotName)))
  const logs = ["restorer", "streamer"].map((service) => readFileSync(join(localStateDir(), "logs", `${NAME}-${service}.log`), "utf8"))
  assert.include(logs[1], streamerSays)
  for (const password of passwords) {
    for (const log of logs) assert.notInclude(log, password)
  }
}

describe("engine-native dumps of RDS snapshots on the emulator", () => {
  it("dumps every database of a restored PostgreSQL instance to zstd SQL that restores to identical tables, then deletes the instance and its password", async () => {
    // Prepare
    const snapshotArn = await run(createSnapshot("shop-db", "postgres"))
    // Act
    const { database, outcome } = await restoredAndDumped(snapshotArn, "shop-db", "postgres", passwordsSet)
    // Assess: the databases dumped
    const names = outcome.databases.map((entry: { database: string }) => entry.database)
    assert.deepStrictEqual(names, ["postgres", "shop"])
    const shop = outcome.databases.find((entry: { database: string }) => entry.database === "shop")
    assert.strictEqual(shop.location.key, "archives/rds/shop-db-snapshot/dump/shop.sql.zst")
    // Assess: the dump opens with stock zstd and psql, and restores to the same rows
    const archive = join(scratch, "shop.sql.zst")
    downloadWithAwsCli(local, shop.location, archive)
    const sql = join(scratch, "shop.sql")
    execFileSync("zstd", ["-q", "-d", "-f", archive, "-o", sql])
    assert.strictEqual(readFileSync(sql).length, shop.bytesRead)
    await onServer(postgres.sql("postgres", "CREATE DATABASE shop_restored;"))
    await onServer(postgres.sql("shop_restored", "", { file: sql }))
    const original = await onServer(tableFingerprints(postgres, "shop"))
    const restored = await onServer(tableFingerprints(postgres, "shop_restored"))
    assert.deepStrictEqual(Object.keys(original), ["customers", "events", "orders"])
    assert.strictEqual(original["customers"]?.rows, 2000)
    assert.strictEqual(original["orders"]?.rows, 5000)
    assert.strictEqual(original["events"]?.rows, 3000)
    assert.deepStrictEqual(restored, original)
    // Assess: the manifest: engine, versions, databases, sizes and checksums
    const manifest = join(scratch, "manifest.ndjson")
    downloadWithAwsCli(local, outcome.manifest, manifest)
    const [header, ...lines] = readFileSync(manifest, "utf8").trim().split("\n").map((line) => JSON.parse(line))
    assert.strictEqual(header.kind, "backup-actions/dump-manifest")
    assert.strictEqual(header.engine, "postgres")
    assert.match(header.tool, /^pg_dump \(PostgreSQL\) \d+/)
    assert.deepStrictEqual(header.databases, ["postgres", "shop"])
    assert.strictEqual(header.sqlBytes, outcome.bytesRead)
    const shopLine = lines.find((line) => line.database === "shop")
    assert.strictEqual(shopLine.checksum.value, shop.checksum.value)
    assert.strictEqual(shopLine.sqlBytes, shop.bytesRead)
    // Assess: the instance and its password are gone, the snapshot is kept, no password in any log
    await cleanedUpWithoutLeaks(database, "shop-db-snapshot", passwordsSet, "dumped shop")
  })

  it("dumps the databases of a restored MariaDB instance to zstd SQL that restores to identical tables, then deletes the instance and its password", async () => {
    // Prepare
    const snapshotArn = await run(createSnapshot("catalog-db", "mariadb"))
    // Act
    const { database, outcome } = await restoredAndDumped(snapshotArn, "catalog-db", "mariadb", mariadbPasswordsSet)
    // Assess: the user's database only, none of the server's own
    assert.deepStrictEqual(
      outcome.databases.map((entry: { database: string }) => entry.database),
      ["shop"]
    )
    const shop = outcome.databases[0]
    assert.strictEqual(shop.location.key, "archives/rds/catalog-db-snapshot/dump/shop.sql.zst")
    // Assess: the dump opens with stock zstd and the mariadb client, and restores to the same rows
    const archive = join(scratch, "catalog-shop.sql.zst")
    downloadWithAwsCli(local, shop.location, archive)
    const sql = join(scratch, "catalog-shop.sql")
    execFileSync("zstd", ["-q", "-d", "-f", archive, "-o", sql])
    assert.strictEqual(readFileSync(sql).length, shop.bytesRead)
    await onServer(mariadb.sql("mysql", "CREATE DATABASE shop_restored CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;"))
    await onServer(mariadb.sql("shop_restored", "", { file: sql }))
    const original = await onServer(mariadbTableFingerprints(mariadb, "shop"))
    const restored = await onServer(mariadbTableFingerprints(mariadb, "shop_restored"))
    assert.deepStrictEqual(Object.keys(original), ["customers", "events", "orders"])
    assert.strictEqual(original["customers"]?.rows, 300)
    assert.strictEqual(original["orders"]?.rows, 500)
    assert.strictEqual(original["events"]?.rows, 400)
    assert.deepStrictEqual(restored, original)
    const objects = "SELECT CONCAT(table_type, ' ', table_name) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_type = 'VIEW' UNION ALL SELECT CONCAT('TRIGGER ', trigger_name) FROM information_schema.triggers WHERE trigger_schema = DATABASE()"
    const restoredObjects = await onServer(mariadb.sql("shop_restored", objects))
    assert.strictEqual(restoredObjects, await onServer(mariadb.sql("shop", objects)))
    assert.strictEqual(restoredObjects, "VIEW order_totals\nTRIGGER orders_amount_not_negative\n")
    // Assess: the manifest: engine, tool, databases, sizes and checksums
    const manifest = join(scratch, "catalog-manifest.ndjson")
    downloadWithAwsCli(local, outcome.manifest, manifest)
    const [header, ...lines] = readFileSync(manifest, "utf8").trim().split("\n").map((line) => JSON.parse(line))
    assert.strictEqual(header.kind, "backup-actions/dump-manifest")
    assert.strictEqual(header.engine, "mariadb")
    assert.match(header.tool, /^mariadb-dump\s+Ver \d+/)
    assert.deepStrictEqual(header.databases, ["shop"])
    assert.strictEqual(header.sqlBytes, outcome.bytesRead)
    assert.strictEqual(lines.length, 1)
    assert.strictEqual(lines[0].checksum.value, shop.checksum.value)
    assert.strictEqual(lines[0].sqlBytes, shop.bytesRead)
    // Assess: the instance and its password are gone, the snapshot is kept, no password in any log
    await cleanedUpWithoutLeaks(database, "catalog-db-snapshot", [...passwordsSet, ...mariadbPasswordsSet], `dumping 1 database(s) of ${database.instanceId} with mariadb-dump`)
  })

  it("fails the restore of a SQL Server snapshot with the reason, restoring nothing and keeping the snapshot", async () => {
    // Prepare
    const snapshotArn = await run(createSnapshot("ledger-db", "sqlserver-ex"))
    // Act
    await run(sendSnapshot(snapshotArn, "ledger-db"))
    const record = await run(waitForStep(local.stack.ledgerTable, snapshotArn, "restore:dump", "3 minutes"))
    // Assess
    assert.strictEqual(record["status"], "failed")
    assert.strictEqual(
      record["reason"],
      "DB snapshot ledger-db-snapshot is of engine sqlserver-ex, which has no supported dump tool (supported: postgres, mysql, mariadb)"
    )
    assert.strictEqual(record["outcome"].status, "failed")
    assert.strictEqual(record["outcome"].reason, record["reason"])
    const instances = await run(
      Effect.flatMap(Rds, (rds) => awsCall("rds:DescribeDBInstances", (abortSignal) => rds.send(new DescribeDBInstancesCommand({}), { abortSignal })))
    )
    const restoredForIt = (instances.DBInstances ?? []).filter((instance) =>
      (instance.TagList ?? []).some((tag) => tag.Key === "backup-actions:recovery-point" && tag.Value === snapshotArn)
    )
    assert.deepStrictEqual(restoredForIt, [])
    assert.isTrue(await run(snapshotExists("ledger-db-snapshot")))
  })
})
