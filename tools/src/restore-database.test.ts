import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { CreateDBInstanceCommand, CreateDBSnapshotCommand } from "@aws-sdk/client-rds"
import { PutObjectCommand } from "@aws-sdk/client-s3"
import { Effect, Exit, Fiber, Scope } from "effect"
import { Rds, S3, Ssm, awsCall } from "@backup-actions/aws"
import {
  EMULATOR_ACCOUNT,
  EMULATOR_REGION,
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
import { compareTableChecksums, parseTableChecksums, parseTableList, tableChecksumScript, tableListQuery } from "@backup-actions/archive"
import type { PolicyDocument } from "@backup-actions/config"
import { sendRecoveryPointEvent, waitForStep } from "./backup-events"
import { runCli } from "./cli-process"
import { startLocalStack, type LocalStack } from "./stack"
import { downloadWithAwsCli, runOn, type StackServices } from "./test-support"

const NAME = "restore-database-test"
const MASTER_USER = "dbadmin"
const SNAPSHOT_PASSWORD = "snapshot-era-password-2"
/** The account that restores: its password must never show in the CLI's output. */
const RESTORER = "restorer"
const RESTORER_PASSWORD = "restore-secret-9f3b"

const policy: PolicyDocument = {
  rules: [{ name: "rds-dump", match: { resourceTypes: ["RDS"] }, archive: { mode: "dump" } }]
}

let local: LocalStack
const servers = Effect.runSync(Scope.make())
let postgres: DbServer
let mariadb: DbServer
let passwordSyncs: ReadonlyArray<Fiber.RuntimeFiber<unknown, unknown>> = []
let scratch: string
let stackFile: string

const run = <A, E>(effect: Effect.Effect<A, E, StackServices>) => runOn(local, effect)
const onServer = <A, E>(effect: Effect.Effect<A, E>) => Effect.runPromise(effect)
const forkOnStack = (effect: Effect.Effect<unknown, unknown, Rds | Ssm>) => Effect.runFork(Effect.scoped(Effect.provide(effect, local.clients)))
const cli = (...args: ReadonlyArray<string>) => runCli(stackFile, ...args)

const postgresUrl = (database: string) => `postgresql://${RESTORER}:${RESTORER_PASSWORD}@127.0.0.1:${postgres.port}/${database}`
const mariadbUrl = (database: string) => `mariadb://${RESTORER}:${RESTORER_PASSWORD}@127.0.0.1:${mariadb.port}/${database}`

/** A DB instance, a snapshot of it, and its dump by the restorer and the streamer; returns the dump's manifest location. */
const dumped = async (instance: string, engine: string) => {
  const snapshotArn = await run(
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
            DBName: "shop",
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
  )
  await run(
    sendRecoveryPointEvent({
      recoveryPointArn: snapshotArn,
      resourceArn: `arn:aws:rds:${EMULATOR_REGION}:${EMULATOR_ACCOUNT}:db:${instance}`,
      resourceType: "RDS",
      vault: "db-dumps"
    })
  )
  const record = await run(waitForStep(local.stack.ledgerTable, snapshotArn, "archive:dump", "3 minutes"))
  assert.strictEqual(record["status"], "succeeded", String(record["reason"]))
  return record["outcome"].manifest as { readonly bucket: string; readonly key: string }
}

const readManifest = (manifest: { readonly bucket: string; readonly key: string }, file: string) => {
  downloadWithAwsCli(local, manifest, join(scratch, file))
  const [header, ...lines] = readFileSync(join(scratch, file), "utf8").trim().split("\n").map((line) => JSON.parse(line))
  return { header, lines }
}

const putManifest = (manifest: { readonly bucket: string; readonly key: string }, text: string) =>
  run(Effect.flatMap(S3, (s3) => awsCall("s3:PutObject", (abortSignal) => s3.send(new PutObjectCommand({ Bucket: manifest.bucket, Key: manifest.key, Body: text }), { abortSignal }))))

beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), "restore-database-test-"))
  postgres = await onServer(Scope.extend(startDbServer(postgresServer, { name: NAME }), servers))
  await onServer(seedShop(postgres, { database: "shop", owner: MASTER_USER, password: SNAPSHOT_PASSWORD }))
  await onServer(postgres.sql("postgres", `CREATE ROLE ${RESTORER} LOGIN SUPERUSER PASSWORD '${RESTORER_PASSWORD}';`))
  mariadb = await onServer(Scope.extend(startDbServer(mariadbServer, { name: NAME }), servers))
  await onServer(seedMariadbShop(mariadb, { database: "shop", owner: MASTER_USER, password: SNAPSHOT_PASSWORD }))
  await onServer(mariadb.sql("mysql", `CREATE USER '${RESTORER}'@'%' IDENTIFIED BY '${RESTORER_PASSWORD}'; GRANT ALL PRIVILEGES ON *.* TO '${RESTORER}'@'%' WITH GRANT OPTION;`))
  local = await startLocalStack({ name: NAME, policy, services: ["restorer", "streamer"], localPostgres: postgres, localMariadb: mariadb })
  stackFile = join(scratch, "stack.json")
  writeFileSync(stackFile, JSON.stringify({ endpoint: local.emulator.endpoint, ...local.stack }, null, 2))
  passwordSyncs = [forkOnStack(syncMasterPasswords(postgres, { user: MASTER_USER })), forkOnStack(syncMasterPasswords(mariadb, { user: MASTER_USER }))]
}, 300_000)

afterAll(async () => {
  await Promise.all(passwordSyncs.map((fiber) => Effect.runPromise(Fiber.interrupt(fiber))))
  await local?.stop()
  await onServer(Scope.close(servers, Exit.void))
  rmSync(scratch, { recursive: true, force: true })
})

describe("restore of a DB dump into a running server", () => {
  let postgresManifest: { readonly bucket: string; readonly key: string }

  it("restores a PostgreSQL database's dump into a new database whose every table's rows and checksum match those recorded at dump time", { timeout: 300_000 }, async () => {
    // Prepare
    postgresManifest = await dumped("orders-db", "postgres")
    const { lines } = readManifest(postgresManifest, "postgres-manifest.ndjson")
    const shop = lines.find((line) => line.database === "shop")
    assert.strictEqual(shop.tableChecksum, "row-md5-quarter-sums/1")
    assert.deepStrictEqual(
      shop.tables.map((table: { table: string; rows: number }) => [table.table, table.rows]),
      [
        ["public.customers", 2000],
        ["public.events", 3000],
        ["public.orders", 5000]
      ]
    )
    // Act
    const restored = await cli("restore", `s3://${postgresManifest.bucket}/${shop.archive}`, "--to-database", postgresUrl("shop_restored"))
    // Assess
    assert.strictEqual(restored.status, 0, restored.stderr)
    assert.include(restored.stdout, `restored shop into postgresql://${RESTORER}@127.0.0.1:${postgres.port}/shop_restored: 3 table(s), 10000 rows; every table's row count and checksum match the dump's`)
    assert.match(restored.stdout, /public\.orders\s+5000 rows/)
    assert.deepStrictEqual(await onServer(tableFingerprints(postgres, "shop_restored")), await onServer(tableFingerprints(postgres, "shop")))
    assert.notInclude(restored.stdout + restored.stderr, RESTORER_PASSWORD)
  })

  it("fails the check naming each table whose rows or checksum differ from the manifest's, exit 1", { timeout: 300_000 }, async () => {
    // Prepare: the manifest records other data for two tables than the dump holds
    const { header, lines } = readManifest(postgresManifest, "postgres-manifest-2.ndjson")
    const tampered = lines.map((line) =>
      line.database !== "shop"
        ? line
        : {
            ...line,
            tables: line.tables.map((table: { table: string; rows: number; checksum: string }) =>
              table.table === "public.orders" ? { ...table, checksum: "0".repeat(32) } : table.table === "public.customers" ? { ...table, rows: 1999 } : table
            )
          }
    )
    await putManifest(postgresManifest, [header, ...tampered].map((line) => JSON.stringify(line)).join("\n") + "\n")
    const shop = lines.find((line) => line.database === "shop")
    // Act
    const restored = await cli("restore", `s3://${postgresManifest.bucket}/${shop.archive}`, "--to-database", postgresUrl("shop_checked"))
    // Assess
    assert.strictEqual(restored.status, 1, restored.stderr)
    assert.include(restored.stderr, "does not match the dump; what is there cannot be trusted:")
    assert.include(restored.stderr, "shop into shop_checked: public.customers: 2000 rows, 1999 at dump time")
    assert.match(restored.stderr, /shop into shop_checked: public\.orders: 5000 rows as at dump time, but their checksum differs \([0-9a-f]{32}, 0{32} at dump time\)/)
    assert.notInclude(restored.stderr, "public.events")
    assert.notInclude(restored.stdout + restored.stderr, RESTORER_PASSWORD)
  })

  it("refuses a database that already holds tables, and a PostgreSQL dump for a MariaDB server, exit 2", { timeout: 120_000 }, async () => {
    // Prepare
    const { lines } = readManifest(postgresManifest, "postgres-manifest-3.ndjson")
    const shop = `s3://${postgresManifest.bucket}/${lines.find((line) => line.database === "shop").archive}`
    // Act
    const occupied = await cli("restore", shop, "--to-database", postgresUrl("shop_restored"))
    const mismatch = await cli("restore", shop, "--to-database", mariadbUrl("shop_restored"))
    // Assess
    assert.strictEqual(occupied.status, 2, occupied.stderr)
    assert.include(occupied.stderr, `postgresql://${RESTORER}@127.0.0.1:${postgres.port}/shop_restored already holds tables: restore into a new or empty database`)
    assert.strictEqual(mismatch.status, 2, mismatch.stderr)
    assert.include(mismatch.stderr, "is a postgres dump; it restores into PostgreSQL (postgresql://)")
  })

  it("restores every database of a MariaDB dump from its manifest, its tables' rows and checksums matching", { timeout: 300_000 }, async () => {
    // Prepare
    const manifest = await dumped("catalog-db", "mariadb")
    const { lines } = readManifest(manifest, "mariadb-manifest.ndjson")
    assert.deepStrictEqual(
      lines[0].tables.map((table: { table: string; rows: number }) => [table.table, table.rows]),
      [
        ["customers", 300],
        ["events", 400],
        ["orders", 500]
      ]
    )
    // Act
    const restored = await cli("restore", `s3://${manifest.bucket}/${manifest.key}`, "--to-database", mariadbUrl("catalog_restored"))
    // Assess
    assert.strictEqual(restored.status, 0, restored.stderr)
    assert.include(restored.stdout, `restored shop into mariadb://${RESTORER}@127.0.0.1:${mariadb.port}/catalog_restored: 3 table(s), 1200 rows; every table's row count and checksum match the dump's`)
    assert.deepStrictEqual(await onServer(mariadbTableFingerprints(mariadb, "catalog_restored")), await onServer(mariadbTableFingerprints(mariadb, "shop")))
    assert.notInclude(restored.stdout + restored.stderr, RESTORER_PASSWORD)
  })

  it("catches one value changed in a restored table: its checksum no longer matches the manifest's, the other tables' still do", { timeout: 120_000 }, async () => {
    // Prepare: one event's ratio changed in the restored copy
    await onServer(mariadb.sql("catalog_restored", "UPDATE events SET ratio = ratio + 1 WHERE id = 7;"))
    const { lines } = readManifest({ bucket: local.stack.artifactBucket, key: "archives/rds/catalog-db-snapshot/dump/manifest.ndjson" }, "mariadb-manifest-2.ndjson")
    // Act: the checks the restore runs, on the changed copy
    const tables = parseTableList("mysql", await onServer(mariadb.sql("catalog_restored", tableListQuery("mysql"))))
    const found = parseTableChecksums(await onServer(mariadb.sql("catalog_restored", tableChecksumScript("mysql", tables))))
    const problems = compareTableChecksums(lines[0].tables, found)
    // Assess
    assert.strictEqual(problems.length, 1, problems.join("\n"))
    assert.match(problems[0] ?? "", /^events: 400 rows as at dump time, but their checksum differs/)
  })
})

describe("restore drills of DB dumps", () => {
  it("drills a dump on the scratch server of its engine, checks every table, drops the scratch databases, and skips dumps when no server is given", { timeout: 300_000 }, async () => {
    // Prepare
    const manifest = await dumped("drilled-db", "postgres")
    const artifact = `s3://${manifest.bucket}/${manifest.key}`
    const resource = `arn:aws:rds:${EMULATOR_REGION}:${EMULATOR_ACCOUNT}:db:drilled-db`
    const drillDatabases = () => onServer(postgres.sql("postgres", "SELECT datname FROM pg_database WHERE datname LIKE 'backup_actions_drill%';"))
    // Act
    const skipped = await cli("drill", "--artifact", artifact, "--resource", resource, "--json")
    const drilled = await cli("drill", "--artifact", artifact, "--resource", resource, "--scratch-database", mariadbUrl(""), "--scratch-database", postgresUrl(""), "--json")
    // Assess
    assert.strictEqual(skipped.status, 0, skipped.stderr)
    assert.match(JSON.parse(skipped.stdout).ran[0].reason, /none was given \(--scratch-database\)/)
    assert.strictEqual(drilled.status, 0, drilled.stderr)
    const [drill] = JSON.parse(drilled.stdout).ran
    assert.deepStrictEqual({ result: drill.result, target: drill.target, scratchDeleted: drill.scratchDeleted }, { result: "passed", target: "database", scratchDeleted: true })
    assert.isAbove(drill.rtoSeconds, 0)
    assert.isAbove(drill.bytes, 0)
    assert.notMatch(await drillDatabases(), /backup_actions_drill/)
    assert.notInclude(drilled.stdout + drilled.stderr, RESTORER_PASSWORD)
  })
})
