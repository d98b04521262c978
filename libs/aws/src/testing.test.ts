import { assert, describe, it } from "@effect/vitest"
import { EC2Client } from "@aws-sdk/client-ec2"
import { RDSClient } from "@aws-sdk/client-rds"
import { KMSClient } from "@aws-sdk/client-kms"
import { Effect, Exit } from "effect"
import { AwsError } from "./errors"
import { BlockDevices } from "./block-devices"
import { DatabaseEndpoints } from "./database-endpoints"
import { RecoveryPoints } from "./recovery-points"
import { SourceSharing } from "./snapshot-sharing"
import { makeMemoryBlockDevices, makeMemoryDatabaseEndpoints, makeMemoryRecoveryPoints, makeMemorySourceSharing } from "./testing"

const point = (name: string) => ({ recoveryPointArn: `arn:aws:ec2:us-east-1::snapshot/snap-${name}`, backupVaultName: "Default", snapshotId: `snap-${name}` })

describe("the in-memory recovery points", () => {
  it.effect("record every deletion, answer the state they are told, and refuse the recovery point they are told to with its error", () =>
    Effect.gen(function* () {
      // Prepare
      const points = makeMemoryRecoveryPoints()
      const refusal = new AwsError({ operation: "backup:DeleteRecoveryPoint", code: "InvalidRequestException", message: "locked by a vault lock", kind: "client" })
      points.failOn(point("locked").recoveryPointArn, refusal)
      // Act
      const first = yield* Effect.flatMap(RecoveryPoints, (recoveryPoints) => recoveryPoints.delete(point("a"))).pipe(Effect.provide(points.layer))
      points.answerWith("still-there")
      const second = yield* Effect.flatMap(RecoveryPoints, (recoveryPoints) => recoveryPoints.delete(point("b"))).pipe(Effect.provide(points.layer))
      const refused = yield* Effect.flip(Effect.flatMap(RecoveryPoints, (recoveryPoints) => recoveryPoints.delete(point("locked")))).pipe(Effect.provide(points.layer))
      // Assess
      assert.deepStrictEqual([first, second], ["deleted", "still-there"])
      assert.strictEqual(refused, refusal)
      assert.deepStrictEqual(points.deletions, [point("a"), point("b"), point("locked")])
    })
  )
})

describe("the in-memory block devices", () => {
  it.effect("give a known volume's device until the scope closes, and refuse any other volume", () =>
    Effect.gen(function* () {
      // Prepare
      const devices = makeMemoryBlockDevices({ "vol-0known": "/dev/loop7" })
      // Act
      const whileOpen = yield* Effect.scoped(
        Effect.gen(function* () {
          const device = yield* (yield* BlockDevices).attach("vol-0known")
          return { device, attached: [...devices.attached] }
        })
      ).pipe(Effect.provide(devices.layer))
      const unknown = yield* Effect.flip(Effect.scoped(Effect.flatMap(BlockDevices, (blockDevices) => blockDevices.attach("vol-0unknown")))).pipe(Effect.provide(devices.layer))
      // Assess
      assert.deepStrictEqual(whileOpen, { device: "/dev/loop7", attached: ["vol-0known"] })
      assert.deepStrictEqual([...devices.attached], [])
      assert.deepStrictEqual(devices.requests, ["vol-0known", "vol-0unknown"])
      assert.deepStrictEqual(unknown._tag === "DeviceUnavailable" ? [unknown.volumeId, unknown.reason] : unknown, ["vol-0unknown", "no device for this volume in the test"])
    })
  )
})

describe("the in-memory database endpoints", () => {
  it.effect("give a known instance's endpoint and none for any other instance, naming it", () =>
    Effect.gen(function* () {
      // Prepare
      const endpoints = makeMemoryDatabaseEndpoints({ "restored-orders": { host: "127.0.0.1", port: 15432 } })
      const database = (instanceId: string) => ({ instanceId, engine: "postgres", address: `${instanceId}.rds.example`, port: 5432 })
      // Act
      const known = yield* Effect.flatMap(DatabaseEndpoints, (service) => service.endpointOf(database("restored-orders"))).pipe(Effect.provide(endpoints.layer))
      const unknown = yield* Effect.exit(Effect.flatMap(DatabaseEndpoints, (service) => service.endpointOf(database("restored-other")))).pipe(Effect.provide(endpoints.layer))
      // Assess
      assert.deepStrictEqual(known, { host: "127.0.0.1", port: 15432 })
      assert.isTrue(Exit.isFailure(unknown))
      assert.deepStrictEqual(endpoints.requests, ["restored-orders", "restored-other"])
    })
  )
})

describe("the in-memory source sharing", () => {
  it.effect("shares the source snapshot itself while the scope is open and takes the share back when it closes", () =>
    Effect.gen(function* () {
      // Prepare
      const sharing = makeMemorySourceSharing()
      const clients = { region: "us-east-1", ec2: new EC2Client({ region: "us-east-1" }), kms: new KMSClient({ region: "us-east-1" }), rds: new RDSClient({ region: "us-east-1" }) }
      const request = {
        snapshotId: "snap-0source",
        sourceArn: "arn:aws:ec2:us-east-1::snapshot/snap-0source",
        volumeSizeGiB: 8,
        source: clients,
        destinationAccount: "222222222222",
        destinationAtSource: { region: "us-east-1", roleArn: "arn:aws:iam::222222222222:role/dr" }
      }
      // Act
      const whileOpen = yield* Effect.scoped(
        Effect.gen(function* () {
          const shared = yield* (yield* SourceSharing).share(request)
          return { shared, open: [...sharing.shared] }
        })
      ).pipe(Effect.provide(sharing.layer))
      // Assess
      assert.deepStrictEqual(whileOpen, { shared: "snap-0source", open: ["snap-0source"] })
      assert.deepStrictEqual([...sharing.shared], [])
      assert.deepStrictEqual(sharing.requests, [request])
    })
  )
})
