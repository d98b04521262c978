import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { CreateDBInstanceCommand, CreateDBSnapshotCommand, DescribeDBInstancesCommand, ModifyDBInstanceCommand, RDSClient } from "@aws-sdk/client-rds"
import { DescribeParametersCommand, GetParameterCommand, PutParameterCommand, SSMClient } from "@aws-sdk/client-ssm"
import { mockClient } from "aws-sdk-client-mock"
import { Effect, Fiber, Layer, Redacted, TestClock } from "effect"
import { Rds, Ssm, awsCall } from "@backup-actions/aws"
import { RESTORED_PASSWORD_PATH, instanceIdOfRestoredPassword, restoredPasswordParameter } from "@backup-actions/config"
import { type Emulator, emulatorClients, startEmulator } from "@backup-actions/local"
import {
  PASSWORD_LENGTH,
  dbSnapshotIdFromArn,
  deleteRestoredInstance,
  dumpInstanceId,
  dumpableSnapshot,
  generateMasterPassword,
  restoreInstance,
  setMasterPassword,
  sweepRestoredInstances,
  waitUntilInstanceAvailable
} from "./db-instances"
import { CREATED_AT_TAG, MANAGED_TAG, RECOVERY_POINT_TAG } from "./volumes"

let emulator: Emulator
beforeAll(async () => {
  emulator = await startEmulator({ name: "restorer-db-test" })
})
afterAll(() => emulator.stop())

const onEmulator = <A, E>(effect: Effect.Effect<A, E, Rds | Ssm>) => effect.pipe(Effect.provide(emulatorClients(emulator.endpoint)), Effect.scoped)

const SNAPSHOT_PASSWORD = "snapshot-era-password-1"

const createInstance = (instanceId: string, options: { readonly engine?: string; readonly tags?: ReadonlyArray<{ Key: string; Value: string }> } = {}) =>
  Effect.flatMap(Rds, (rds) =>
    awsCall("rds:CreateDBInstance", (abortSignal) =>
      rds.send(
        new CreateDBInstanceCommand({
          DBInstanceIdentifier: instanceId,
          DBInstanceClass: "db.t3.micro",
          Engine: options.engine ?? "postgres",
          AllocatedStorage: 20,
          MasterUsername: "dbadmin",
          MasterUserPassword: SNAPSHOT_PASSWORD,
          ...(options.tags === undefined ? {} : { Tags: [...options.tags] })
        }),
        { abortSignal }
      )
    )
  )

const createSnapshot = (instanceId: string, engine = "postgres") =>
  Effect.gen(function* () {
    const rds = yield* Rds
    yield* createInstance(instanceId, { engine })
    const snapshot = yield* awsCall("rds:CreateDBSnapshot", (abortSignal) =>
      rds.send(new CreateDBSnapshotCommand({ DBInstanceIdentifier: instanceId, DBSnapshotIdentifier: `${instanceId}-snapshot` }), { abortSignal })
    )
    return snapshot.DBSnapshot?.DBSnapshotArn ?? ""
  })

const putPassword = (instanceId: string) =>
  Effect.flatMap(Ssm, (ssm) =>
    awsCall("ssm:PutParameter", (abortSignal) =>
      ssm.send(new PutParameterCommand({ Name: restoredPasswordParameter(instanceId), Type: "SecureString", Value: "not-a-real-password" }), { abortSignal })
    )
  )

const instanceIds = Effect.flatMap(Rds, (rds) => awsCall("rds:DescribeDBInstances", (abortSignal) => rds.send(new DescribeDBInstancesCommand({}), { abortSignal }))).pipe(
  Effect.map((found) => (found.DBInstances ?? []).map((instance) => instance.DBInstanceIdentifier ?? ""))
)

const parameterNames = Effect.flatMap(Ssm, (ssm) => awsCall("ssm:DescribeParameters", (abortSignal) => ssm.send(new DescribeParametersCommand({}), { abortSignal }))).pipe(
  Effect.map((found) => (found.Parameters ?? []).map((parameter) => parameter.Name ?? ""))
)

describe("master passwords of restored instances", () => {
  it.effect("are 32 letters and digits, fresh every time, and print as redacted", () =>
    Effect.gen(function* () {
      // Act
      const first = yield* generateMasterPassword
      const second = yield* generateMasterPassword
      // Assess
      assert.match(Redacted.value(first), new RegExp(`^[A-Za-z0-9]{${PASSWORD_LENGTH}}$`))
      assert.notStrictEqual(Redacted.value(first), Redacted.value(second))
      assert.notInclude(String(first), Redacted.value(first))
      assert.notInclude(JSON.stringify({ first }), Redacted.value(first))
    })
  )

  it("live in a parameter named after the instance, from which the instance id reads back", () => {
    // Act
    const name = restoredPasswordParameter("ba-dump-0123456789abcdef0123")
    // Assess: the path the services' IAM grants name (libs/config)
    assert.strictEqual(RESTORED_PASSWORD_PATH, "/backup-actions/restored")
    assert.strictEqual(name, `${RESTORED_PASSWORD_PATH}/ba-dump-0123456789abcdef0123/password`)
    assert.strictEqual(instanceIdOfRestoredPassword(name), "ba-dump-0123456789abcdef0123")
    assert.isUndefined(instanceIdOfRestoredPassword("/backup-actions/other/ba-dump-1/password"))
  })
})

describe("restored instance names", () => {
  it("take the snapshot id from an AWS Backup ARN, colon and all, and refuse an EBS ARN", () => {
    // Act and assess
    assert.strictEqual(dbSnapshotIdFromArn("arn:aws:rds:us-east-1:123456789012:snapshot:awsbackup:job-0123abcd"), "awsbackup:job-0123abcd")
    assert.isUndefined(dbSnapshotIdFromArn("arn:aws:ec2:us-east-1::snapshot/snap-0123456789abcdef0"))
  })

  it("are valid RDS identifiers, the same for a recovery point on every attempt", () => {
    // Act
    const id = dumpInstanceId("arn:aws:rds:us-east-1:123456789012:snapshot:awsbackup:job-0123abcd")
    // Assess
    assert.match(id, /^[a-z](?:-?[a-z0-9])*$/)
    assert.isAtMost(id.length, 63)
    assert.strictEqual(id, dumpInstanceId("arn:aws:rds:us-east-1:123456789012:snapshot:awsbackup:job-0123abcd"))
    assert.notStrictEqual(id, dumpInstanceId("arn:aws:rds:us-east-1:123456789012:snapshot:awsbackup:job-0123abce"))
  })
})

describe("restoring a DB snapshot for a dump on the emulator", () => {
  it.live("restores a private, tagged instance and gives it a password that only the SecureString parameter holds", () =>
    onEmulator(
      Effect.gen(function* () {
        // Prepare
        const snapshotArn = yield* createSnapshot("orders-db")
        const instanceId = dumpInstanceId(snapshotArn)
        // Act
        const snapshot = yield* dumpableSnapshot(snapshotArn)
        yield* restoreInstance({ recoveryPointArn: snapshotArn, snapshotId: snapshot.snapshotId, instanceId, instanceClass: "db.t4g.small" })
        yield* waitUntilInstanceAvailable(instanceId)
        const parameterName = yield* setMasterPassword(instanceId)
        const instance = yield* waitUntilInstanceAvailable(instanceId)
        // Assess: the instance
        assert.strictEqual(snapshot.engine, "postgres")
        assert.strictEqual(instance.DBInstanceClass, "db.t4g.small")
        assert.strictEqual(instance.MasterUsername, "dbadmin")
        const tags = Object.fromEntries((instance.TagList ?? []).map((tag) => [tag.Key, tag.Value]))
        assert.strictEqual(tags[MANAGED_TAG], "true")
        assert.strictEqual(tags[RECOVERY_POINT_TAG], snapshotArn)
        assert.isTrue(Number.isFinite(Date.parse(tags[CREATED_AT_TAG] ?? "")))
        // Assess: the password, set on the instance and kept encrypted
        const ssm = yield* Ssm
        const stored = yield* awsCall("ssm:GetParameter", (abortSignal) => ssm.send(new GetParameterCommand({ Name: parameterName, WithDecryption: true }), { abortSignal }))
        assert.strictEqual(stored.Parameter?.Type, "SecureString")
        const password = stored.Parameter?.Value ?? ""
        assert.lengthOf(password, PASSWORD_LENGTH)
        assert.notStrictEqual(password, SNAPSHOT_PASSWORD)
      })
    )
  )

  it.live("takes over the instance that an earlier attempt made for the same recovery point", () =>
    onEmulator(
      Effect.gen(function* () {
        // Prepare
        const snapshotArn = yield* createSnapshot("billing-db")
        const instanceId = dumpInstanceId(snapshotArn)
        const request = { recoveryPointArn: snapshotArn, snapshotId: "billing-db-snapshot", instanceId, instanceClass: "db.t4g.micro" }
        yield* restoreInstance(request)
        // Act
        yield* restoreInstance(request)
        // Assess
        const ids = yield* instanceIds
        assert.strictEqual(ids.filter((id) => id === instanceId).length, 1)
      })
    )
  )

  it.live("refuses a snapshot of an engine without a dump tool, with the engine named", () =>
    onEmulator(
      Effect.gen(function* () {
        // Prepare
        const snapshotArn = yield* createSnapshot("reports-db", "sqlserver-ex")
        // Act
        const error = yield* Effect.flip(dumpableSnapshot(snapshotArn))
        // Assess
        assert.strictEqual(error._tag, "NotDumpable")
        assert.include(error._tag === "NotDumpable" ? error.reason : "", "engine sqlserver-ex, which has no supported dump tool")
      })
    )
  )

  it.live("deletes an instance with its password, and a second delete finds nothing to do", () =>
    onEmulator(
      Effect.gen(function* () {
        // Prepare
        yield* createInstance("ba-dump-deleteme")
        yield* putPassword("ba-dump-deleteme")
        // Act
        yield* deleteRestoredInstance("ba-dump-deleteme")
        yield* deleteRestoredInstance("ba-dump-deleteme")
        // Assess
        assert.notInclude(yield* instanceIds, "ba-dump-deleteme")
        assert.notInclude(yield* parameterNames, restoredPasswordParameter("ba-dump-deleteme"))
      })
    )
  )
})

describe("the leftover sweeper for DB instances", () => {
  it.live("deletes only instances tagged as ours that are older than the limit, with their passwords", () =>
    onEmulator(
      Effect.gen(function* () {
        // Prepare: an old instance of ours, a fresh one of ours, and an old one that is not ours, each with a password
        const hoursAgo = (hours: number) => new Date(Date.now() - hours * 3_600_000).toISOString()
        yield* createInstance("sweep-old-ours", { tags: [{ Key: MANAGED_TAG, Value: "true" }, { Key: CREATED_AT_TAG, Value: hoursAgo(7) }] })
        yield* createInstance("sweep-fresh-ours", { tags: [{ Key: MANAGED_TAG, Value: "true" }, { Key: CREATED_AT_TAG, Value: hoursAgo(1) }] })
        yield* createInstance("sweep-old-not-ours", { tags: [{ Key: CREATED_AT_TAG, Value: hoursAgo(30) }] })
        for (const id of ["sweep-old-ours", "sweep-fresh-ours", "sweep-old-not-ours"]) yield* putPassword(id)
        // Act
        const deleted = yield* sweepRestoredInstances("6 hours")
        // Assess
        assert.deepStrictEqual(deleted, ["sweep-old-ours"])
        const ids = yield* instanceIds
        assert.includeMembers(ids, ["sweep-fresh-ours", "sweep-old-not-ours"])
        assert.notInclude(ids, "sweep-old-ours")
        const names = yield* parameterNames
        assert.includeMembers(names, [restoredPasswordParameter("sweep-fresh-ours"), restoredPasswordParameter("sweep-old-not-ours")])
        assert.notInclude(names, restoredPasswordParameter("sweep-old-ours"))
      })
    )
  )

  it.live("deletes a password older than the limit whose instance no longer exists, and keeps one whose instance does", () =>
    onEmulator(
      Effect.gen(function* () {
        // Prepare
        yield* putPassword("ba-dump-vanished")
        yield* createInstance("ba-dump-still-here")
        yield* putPassword("ba-dump-still-here")
        yield* Effect.sleep("20 millis")
        // Act
        yield* sweepRestoredInstances("10 millis")
        // Assess
        const names = yield* parameterNames
        assert.notInclude(names, restoredPasswordParameter("ba-dump-vanished"))
        assert.include(names, restoredPasswordParameter("ba-dump-still-here"))
      })
    )
  )
})

/**
 * The emulator never shows an instance's master password (DescribeDBInstances does not return
 * it, and its inspection API fails on DB instances), and its instances are available at once:
 * what the calls carry and how state changes are waited out is checked on their exact input.
 */
describe("restored instance calls, on their exact input", () => {
  const mocked = () => {
    const rds = new RDSClient({ region: "us-east-1" })
    const ssm = new SSMClient({ region: "us-east-1" })
    const rdsMock = mockClient(rds)
    const ssmMock = mockClient(ssm)
    return { rdsMock, ssmMock, layer: Layer.mergeAll(Layer.succeed(Rds, rds), Layer.succeed(Ssm, ssm)) }
  }

  it.effect("stores the password as a SecureString before setting the very same one on the instance, at once", () =>
    Effect.gen(function* () {
      // Prepare
      const { rdsMock, ssmMock, layer } = mocked()
      const order: Array<string> = []
      ssmMock.on(PutParameterCommand).callsFake(async () => (order.push("ssm:PutParameter"), { Version: 1 }))
      rdsMock.on(ModifyDBInstanceCommand).callsFake(async () => (order.push("rds:ModifyDBInstance"), {}))
      // Act
      const name = yield* setMasterPassword("ba-dump-0123").pipe(Effect.provide(layer))
      // Assess
      assert.deepStrictEqual(order, ["ssm:PutParameter", "rds:ModifyDBInstance"])
      const stored = ssmMock.commandCalls(PutParameterCommand)[0]?.args[0].input
      const modified = rdsMock.commandCalls(ModifyDBInstanceCommand)[0]?.args[0].input
      assert.strictEqual(name, restoredPasswordParameter("ba-dump-0123"))
      assert.strictEqual(stored?.Name, name)
      assert.strictEqual(stored?.Type, "SecureString")
      assert.isTrue(stored?.Overwrite)
      assert.match(stored?.Value ?? "", /^[A-Za-z0-9]{32}$/)
      assert.deepStrictEqual(modified, { DBInstanceIdentifier: "ba-dump-0123", MasterUserPassword: stored?.Value, ApplyImmediately: true })
    })
  )

  it.effect("waits on a growing interval through creating and resetting-master-credentials until available", () =>
    Effect.gen(function* () {
      // Prepare
      const { rdsMock, layer } = mocked()
      rdsMock
        .on(DescribeDBInstancesCommand)
        .resolvesOnce({ DBInstances: [{ DBInstanceStatus: "creating" }] })
        .resolvesOnce({ DBInstances: [{ DBInstanceStatus: "creating" }] })
        .resolvesOnce({ DBInstances: [{ DBInstanceStatus: "resetting-master-credentials" }] })
        .resolves({ DBInstances: [{ DBInstanceStatus: "available", DBInstanceIdentifier: "ba-dump-0123" }] })
      // Act
      const fiber = yield* Effect.fork(waitUntilInstanceAvailable("ba-dump-0123").pipe(Effect.provide(layer)))
      yield* TestClock.adjust("1 second")
      const callsAfterOneSecond = rdsMock.commandCalls(DescribeDBInstancesCommand).length
      yield* TestClock.adjust("5 minutes")
      const instance = yield* Fiber.join(fiber)
      // Assess
      assert.strictEqual(callsAfterOneSecond, 1)
      assert.strictEqual(instance.DBInstanceIdentifier, "ba-dump-0123")
      assert.strictEqual(rdsMock.commandCalls(DescribeDBInstancesCommand).length, 4)
    })
  )

  it.effect("fails at once when the instance reaches a state that never leads to available", () =>
    Effect.gen(function* () {
      // Prepare
      const { rdsMock, layer } = mocked()
      rdsMock.on(DescribeDBInstancesCommand).resolves({ DBInstances: [{ DBInstanceStatus: "incompatible-restore" }] })
      // Act
      const error = yield* Effect.flip(waitUntilInstanceAvailable("ba-dump-0123").pipe(Effect.provide(layer)))
      // Assess
      assert.strictEqual(error._tag, "InstanceNotReady")
      assert.strictEqual(error._tag === "InstanceNotReady" ? error.status : "", "incompatible-restore")
      assert.strictEqual(rdsMock.commandCalls(DescribeDBInstancesCommand).length, 1)
    })
  )
})
