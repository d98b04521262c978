import { assert, describe, it } from "@effect/vitest"
import { EBSClient } from "@aws-sdk/client-ebs"
import { EC2Client } from "@aws-sdk/client-ec2"
import { S3Client } from "@aws-sdk/client-s3"
import { SSMClient } from "@aws-sdk/client-ssm"
import { mockClient } from "aws-sdk-client-mock"
import { Effect, Either, Layer } from "effect"
import { Ebs, Ec2, S3, Ssm } from "@backup-actions/aws"
import { makeMemoryBlockDevices, makeMemoryDatabaseEndpoints, makeMemoryRecoveryPoints } from "@backup-actions/aws/testing"
import { ServiceSettings } from "@backup-actions/config"
import { ArchiveCompleted, ExportCompleted, RestoreCompleted, type ArchivePlan, type DetailOf, type EventOf } from "@backup-actions/contracts"
import { UnprocessableEvent } from "@backup-actions/consumer"
import { makeMemoryPublisher } from "@backup-actions/consumer/testing"
import { makeMemoryLedger } from "@backup-actions/ledger/testing"
import { onAmiExported, onRestoreCompleted } from "./service"
import { testEnvelope, directPlanHandOff } from "@backup-actions/contracts/testing"

const ACCOUNT = "123456789012"
const REGION = "us-east-1"

/**
 * The streamer's handlers over an in-memory ledger, publisher, recovery points, block devices
 * and database endpoints, with mocked clients that answer nothing: `state` is what the streamer
 * recorded, announced, deleted, attached, connected to and asked AWS.
 */
const streamer = () => {
  const ledger = makeMemoryLedger()
  const publisher = makeMemoryPublisher()
  const points = makeMemoryRecoveryPoints()
  const devices = makeMemoryBlockDevices()
  const endpoints = makeMemoryDatabaseEndpoints()
  const clients = {
    ebs: new EBSClient({ region: REGION }),
    ec2: new EC2Client({ region: REGION }),
    s3: new S3Client({ region: REGION }),
    ssm: new SSMClient({ region: REGION })
  }
  const mocks = [
    mockClient(clients.ebs),
    mockClient(clients.ec2),
    mockClient(clients.s3),
    mockClient(clients.ssm)
  ]
  const layer = Layer.mergeAll(
    ledger.layer,
    publisher.layer,
    points.layer,
    devices.layer,
    endpoints.layer,
    ServiceSettings.layer({ busName: "bus", artifactBucket: "artifacts", ledgerTable: "ledger", queueUrl: "streamer-queue", deadLetterQueueUrl: "streamer-dlq", workDir: "/tmp" }),
    Layer.succeed(Ebs, clients.ebs),
    Layer.succeed(Ec2, clients.ec2),
    Layer.succeed(S3, clients.s3),
    Layer.succeed(Ssm, clients.ssm)
  )
  return {
    ledger,
    layer,
    state: () => ({
      ledgerSteps: [...ledger.items.values()].map((record) => `${record.recoveryPointArn} ${record.action}`).sort(),
      published: publisher.published.length,
      deletions: points.deletions.length,
      attached: devices.requests.length,
      connected: endpoints.requests.length,
      awsCalls: mocks.reduce((total, mock) => total + mock.calls().length, 0)
    }),
    /** The Archive Completed events published so far, in order. */
    archives: Effect.suspend(() => Effect.forEach(publisher.published, (event) => ArchiveCompleted.decodeDetail(event.detail)))
  }
}

const nothingDone = { ledgerSteps: [], published: 0, deletions: 0, attached: 0, connected: 0, awsCalls: 0 }

/** The UnprocessableEvent's reason, or the tag of any other failure so that an assertion on the reason shows it. */
const rejectionOf = <A, E extends { readonly _tag: string }, R>(handled: Effect.Effect<A, E, R>) =>
  Effect.flip(handled).pipe(Effect.map((error) => ({ tag: error._tag, reason: error instanceof UnprocessableEvent ? error.reason : undefined })))

const envelope = testEnvelope(ACCOUNT, REGION)

const snapshotArn = (snapshotId: string) => `arn:aws:ec2:${REGION}::snapshot/${snapshotId}`

const planOf = (mode: ArchivePlan["mode"]): ArchivePlan => ({ rule: mode, mode, compression: "zstd", deleteSourceAfterVerify: false })

const restoreCompleted = (id: string, detail: Partial<DetailOf<typeof RestoreCompleted>> & Pick<DetailOf<typeof RestoreCompleted>, "snapshotId" | "plan">): EventOf<typeof RestoreCompleted> => {
  const correlationId = snapshotArn(detail.snapshotId)
  return {
    ...envelope,
    id,
    source: RestoreCompleted.source,
    "detail-type": RestoreCompleted.detailType,
    resources: [correlationId],
    detail: {
      schemaVersion: 1,
      correlationId,
      idempotencyKey: `${correlationId}#restore:${detail.plan.mode}`,
      status: "restored",
      resourceType: "EBS",
      backupVaultName: "archive-volume",
      ...detail
    }
  }
}

const handOff = (id: string, recoveryPointArn: string, snapshotId: string, plan: ArchivePlan) => directPlanHandOff(envelope, id, recoveryPointArn, snapshotId, plan)

describe("the streamer's restore handler", () => {
  /** Hands the event to the restore handler and checks the rejection's reason, and that nothing was done. */
  const rejects = (event: EventOf<typeof RestoreCompleted>, problem: string) => {
    // Prepare
    const local = streamer()
    return Effect.gen(function* () {
      // Act
      const rejection = yield* rejectionOf(onRestoreCompleted(event))
      // Assess
      assert.deepStrictEqual(rejection, {
        tag: "UnprocessableEvent",
        reason: `"Restore Completed" event ${event.id} for ${event.detail.correlationId} (mode ${event.detail.plan.mode}) ${problem}`
      })
      assert.deepStrictEqual(local.state(), nothingDone)
    }).pipe(Effect.provide(local.layer))
  }

  it.effect("rejects a restored event for direct mode, which never restores, and archives nothing", () =>
    rejects(
      restoreCompleted("restore-direct", { snapshotId: "snap-0direct00000001", plan: planOf("direct"), volumeId: "vol-0direct00000001" }),
      "is for direct mode, which archives from the snapshot and never restores"
    )
  )

  it.effect("rejects a restored event for dump mode that names no restored DB instance, and archives nothing", () =>
    rejects(restoreCompleted("restore-dump", { snapshotId: "snap-0dump0000000001", plan: planOf("dump"), resourceType: "RDS" }), "names no restored DB instance to dump")
  )

  it.effect("rejects a restored event for volume mode that names no restored volume, and archives nothing", () =>
    rejects(restoreCompleted("restore-volume", { snapshotId: "snap-0volume00000001", plan: planOf("volume") }), "names no restored volume to archive")
  )

  it.effect("rejects a hand-off that restored nothing for volume mode, which archives a restored copy, and archives nothing", () =>
    rejects(
      restoreCompleted("handoff-volume", { snapshotId: "snap-0handoffvol0001", plan: planOf("volume"), status: "not-needed" }),
      "says nothing was restored, but this mode archives a restored copy"
    )
  )

  it.effect("records and announces a failed archive for a direct-mode plan whose recovery point is not an EBS snapshot, and keeps it although the plan asks to delete it", () => {
    // Prepare: a recovery point the streamer can name but never read, under a plan that deletes a verified source
    const local = streamer()
    const recoveryPointArn = `arn:aws:backup:${REGION}:${ACCOUNT}:recovery-point:not-a-snapshot`
    const event = handOff("handoff-not-snapshot", recoveryPointArn, "", { ...planOf("direct"), deleteSourceAfterVerify: true })
    return Effect.gen(function* () {
      // Act
      yield* onRestoreCompleted(event)
      // Assess: the failed outcome with its reason announced, and the source kept
      const reason = `recovery point "${recoveryPointArn}" is not an EBS snapshot ARN`
      assert.deepStrictEqual(
        (yield* local.archives).map((detail) => [detail.correlationId, detail.status, detail.sourceDeleted, detail.reason]),
        [[recoveryPointArn, "failed", false, reason]]
      )
      assert.deepStrictEqual(local.state(), { ...nothingDone, ledgerSteps: [`${recoveryPointArn} archive:direct`], published: 1 })
      // Assess: the ledger holds the failed step, so a replay runs it again and the reporter can read it
      const record = yield* local.ledger.ledger.get({ recoveryPointArn, action: "archive:direct" })
      assert.deepStrictEqual([record?.status, record?.reason], ["failed", reason])
    }).pipe(Effect.provide(local.layer))
  })

  it.effect("carries the protected resource that a Restore Completed names into its Archive Completed, in every mode", () => {
    // Prepare: a volume, a dump and a direct-mode archive that each fail (no device, no endpoint, no snapshot), so that only the outcome is announced
    const local = streamer()
    const volume = `arn:aws:ec2:${REGION}:${ACCOUNT}:volume/vol-0protected00001`
    const database = `arn:aws:rds:${REGION}:${ACCOUNT}:db:orders`
    const directVolume = `arn:aws:ec2:${REGION}:${ACCOUNT}:volume/vol-0protected00002`
    const handOffEvent = handOff("handoff-named", snapshotArn("snap-0named0direct001"), "snap-0named0direct001", planOf("direct"))
    const events = [
      restoreCompleted("restore-volume-named", { snapshotId: "snap-0named0volume001", plan: planOf("volume"), volumeId: "vol-0restored00000001", resourceArn: volume }),
      restoreCompleted("restore-dump-named", {
        snapshotId: "snap-0named0dump00001",
        plan: planOf("dump"),
        resourceType: "RDS",
        resourceArn: database,
        database: { instanceId: "dump-orders", engine: "postgres", engineVersion: "16.4", address: "dump-orders.local", port: 5432, user: "postgres", passwordParameter: "/dump/orders" }
      }),
      { ...handOffEvent, detail: { ...handOffEvent.detail, resourceArn: directVolume } }
    ]
    return Effect.gen(function* () {
      // Act
      yield* Effect.forEach(events, onRestoreCompleted, { discard: true })
      // Assess
      assert.deepStrictEqual(
        (yield* local.archives).map((detail) => [detail.mode, detail.status, detail.resourceArn]),
        [
          ["volume", "failed", volume],
          ["dump", "failed", database],
          ["direct", "failed", directVolume]
        ]
      )
    }).pipe(Effect.provide(local.layer))
  })

  it.effect("announces an archive without a protected resource when its Restore Completed, from an earlier build, names none", () => {
    // Prepare
    const local = streamer()
    const event = handOff("handoff-unnamed", snapshotArn("snap-0unnamed0000001"), "snap-0unnamed0000001", planOf("direct"))
    return Effect.gen(function* () {
      // Act
      yield* onRestoreCompleted(event)
      // Assess: the key left out, not set to nothing
      assert.deepStrictEqual(
        (yield* local.archives).map((detail) => [detail.status, Object.hasOwn(detail, "resourceArn")]),
        [["failed", false]]
      )
    }).pipe(Effect.provide(local.layer))
  })

  it.effect("ignores a failed restore, even one that names no volume, and archives nothing", () => {
    // Prepare
    const local = streamer()
    const event = restoreCompleted("restore-failed", {
      snapshotId: "snap-0failed00000001",
      plan: planOf("volume"),
      status: "failed",
      reason: "ec2:CreateVolume failed: InsufficientCapacity"
    })
    return Effect.gen(function* () {
      // Act
      const handled = yield* Effect.either(onRestoreCompleted(event))
      // Assess
      assert.isTrue(Either.isRight(handled))
      assert.deepStrictEqual(local.state(), nothingDone)
    }).pipe(Effect.provide(local.layer))
  })
})

describe("the streamer's AMI export handler", () => {
  it.effect("rejects a direct-mode AMI export that lists no snapshots, and archives nothing", () => {
    // Prepare
    const local = streamer()
    const imageArn = `arn:aws:ec2:${REGION}::image/ami-0nosnapshots0001`
    const event: EventOf<typeof ExportCompleted> = {
      ...envelope,
      id: "ami-no-snapshots",
      source: ExportCompleted.source,
      "detail-type": ExportCompleted.detailType,
      resources: [imageArn],
      detail: {
        schemaVersion: 1,
        correlationId: imageArn,
        idempotencyKey: `${imageArn}#export:ami`,
        status: "exported",
        kind: "ami",
        mode: "direct",
        imageId: "ami-0nosnapshots0001",
        sourceDeleted: false,
        snapshots: []
      }
    }
    return Effect.gen(function* () {
      // Act
      const rejection = yield* rejectionOf(onAmiExported(event))
      // Assess
      assert.deepStrictEqual(rejection, {
        tag: "UnprocessableEvent",
        reason: `"Export Completed" event ami-no-snapshots for ${imageArn} (AMI, direct mode) lists no snapshots to archive`
      })
      assert.deepStrictEqual(local.state(), nothingDone)
    }).pipe(Effect.provide(local.layer))
  })

  it.effect("names the AMI's instance as the protected resource of each of its snapshots' archives", () => {
    // Prepare: an image of two snapshots that EC2 no longer knows, so that each archive fails at once
    const local = streamer()
    const imageArn = `arn:aws:ec2:${REGION}::image/ami-0twosnapshots0001`
    const instance = `arn:aws:ec2:${REGION}:${ACCOUNT}:instance/i-0protected0000001`
    const archiveAt = (snapshotId: string) => ({ snapshotId, archive: { bucket: "artifacts", key: `archives/ebs/${snapshotId}/direct/disk.img.zst` } })
    const event: EventOf<typeof ExportCompleted> = {
      ...envelope,
      id: "ami-two-snapshots",
      source: ExportCompleted.source,
      "detail-type": ExportCompleted.detailType,
      resources: [imageArn],
      detail: {
        schemaVersion: 1,
        correlationId: imageArn,
        idempotencyKey: `${imageArn}#export:direct`,
        status: "exported",
        kind: "ami",
        resourceArn: instance,
        mode: "direct",
        imageId: "ami-0twosnapshots0001",
        sourceDeleted: false,
        snapshots: [archiveAt("snap-0ami0root000001"), archiveAt("snap-0ami0data000001")]
      }
    }
    return Effect.gen(function* () {
      // Act
      yield* onAmiExported(event)
      // Assess
      assert.deepStrictEqual(
        (yield* local.archives).map((detail) => [detail.snapshotId, detail.resourceArn]),
        [
          ["snap-0ami0root000001", instance],
          ["snap-0ami0data000001", instance]
        ]
      )
    }).pipe(Effect.provide(local.layer))
  })
})
