import { assert, describe, it } from "@effect/vitest"
import { CreateVolumeCommand, DeleteVolumeCommand, DescribeAvailabilityZonesCommand, DescribeSnapshotsCommand, DescribeVolumesCommand, EC2Client } from "@aws-sdk/client-ec2"
import { RDSClient } from "@aws-sdk/client-rds"
import { SSMClient } from "@aws-sdk/client-ssm"
import { mockClient } from "aws-sdk-client-mock"
import { Effect, Either, Layer } from "effect"
import { Ec2, Rds, Ssm } from "@backup-actions/aws"
import { fixedProtectedResources } from "@backup-actions/aws/testing"
import { PolicySource, ServiceSettings, type Policy } from "@backup-actions/config"
import { ArchiveCompleted, RecoveryPointStateChange, RestoreCompleted, type ArchiveMode, type EventOf } from "@backup-actions/contracts"
import { UnprocessableEvent } from "@backup-actions/consumer"
import { makeMemoryPublisher } from "@backup-actions/consumer/testing"
import { makeMemoryLedger } from "@backup-actions/ledger/testing"
import { DIRECT_HAND_OFF_ACTION, onArchiveCompleted, onRecoveryPoint } from "./service"
import { testEnvelope, recoveryPointCompleted as recoveryPointEvent } from "@backup-actions/contracts/testing"

const ACCOUNT = "123456789012"
const REGION = "us-east-1"

/** Volume mode for EBS in the "archive-volume" vault, direct mode for the rest of EBS, dumps for RDS. */
const policy: Policy = {
  rules: [
    { name: "volume", match: { resourceTypes: ["EBS"], vaults: ["archive-volume"] }, archive: { mode: "volume", compression: "zstd", deleteSourceAfterVerify: false } },
    { name: "direct", match: { resourceTypes: ["EBS"] }, archive: { mode: "direct", compression: "zstd", deleteSourceAfterVerify: false } },
    { name: "dump", match: { resourceTypes: ["RDS"] }, archive: { mode: "dump", compression: "zstd", deleteSourceAfterVerify: false } }
  ]
}

/**
 * The restorer's handlers over an in-memory ledger and publisher, with mocked EC2, RDS and SSM
 * clients: `state` is what the restorer recorded, announced and asked AWS.
 */
const restorer = () => {
  const ledger = makeMemoryLedger()
  const publisher = makeMemoryPublisher()
  const clients = { ec2: new EC2Client({ region: REGION }), rds: new RDSClient({ region: REGION }), ssm: new SSMClient({ region: REGION }) }
  const mocks = { ec2: mockClient(clients.ec2), rds: mockClient(clients.rds), ssm: mockClient(clients.ssm) }
  const layer = Layer.mergeAll(
    ledger.layer,
    publisher.layer,
    fixedProtectedResources(),
    PolicySource.layer(policy),
    ServiceSettings.layer({ busName: "bus", artifactBucket: "artifacts", ledgerTable: "ledger", queueUrl: "restorer-queue", deadLetterQueueUrl: "restorer-dlq", workDir: "/tmp" }),
    Layer.succeed(Ec2, clients.ec2),
    Layer.succeed(Rds, clients.rds),
    Layer.succeed(Ssm, clients.ssm)
  )
  return {
    mocks,
    layer,
    /** The steps recorded (as "<recovery point> <action>"), the events published and how many calls went to AWS. */
    state: () => ({
      ledgerSteps: [...ledger.items.values()].map((record) => `${record.recoveryPointArn} ${record.action}`).sort(),
      published: publisher.published.length,
      awsCalls: mocks.ec2.calls().length + mocks.rds.calls().length + mocks.ssm.calls().length
    }),
    /** The Restore Completed events published so far, in order. */
    restores: Effect.suspend(() => Effect.forEach(publisher.published, (event) => RestoreCompleted.decodeDetail(event.detail)))
  }
}

const nothingDone = { ledgerSteps: [], published: 0, awsCalls: 0 }

/** The UnprocessableEvent's reason, or the tag of any other failure so that an assertion on the reason shows it. */
const rejectionOf = <A, E extends { readonly _tag: string }, R>(handled: Effect.Effect<A, E, R>) =>
  Effect.flip(handled).pipe(Effect.map((error) => ({ tag: error._tag, reason: error instanceof UnprocessableEvent ? error.reason : undefined })))

const envelope = testEnvelope(ACCOUNT, REGION)

const recoveryPointCompleted = (id: string, resource: Parameters<typeof recoveryPointEvent>[2], recoveryPointArn?: string) =>
  recoveryPointEvent(envelope, id, resource, recoveryPointArn)

const ebsVolume = (name: string, vaultName: string) => ({ resourceType: "EBS", resourceArn: `arn:aws:ec2:${REGION}:${ACCOUNT}:volume/vol-0${name}`, vaultName })

/** An Archive Completed of the given outcome that names neither what was restored for it. */
const archiveCompleted = (id: string, mode: ArchiveMode, correlationId: string, status: "archived" | "failed" = "failed"): EventOf<typeof ArchiveCompleted> => ({
  ...envelope,
  id,
  source: ArchiveCompleted.source,
  "detail-type": ArchiveCompleted.detailType,
  resources: [correlationId],
  detail: {
    schemaVersion: 1,
    correlationId,
    idempotencyKey: `${correlationId}#archive:${mode}`,
    status,
    snapshotId: "snap-0archived000001",
    mode,
    compression: "zstd",
    bytesRead: 0,
    bytesStored: 0,
    durationMs: 10,
    verified: status === "archived" ? "content" : "none",
    sourceDeleted: false,
    ...(status === "failed" ? { reason: "tar exited with 2" } : {})
  }
})

describe("the restorer's recovery-point handler", () => {
  const rejectsWithoutRecoveryPoint = (event: EventOf<typeof RecoveryPointStateChange>) => {
    // Prepare
    const local = restorer()
    return Effect.gen(function* () {
      // Act
      const rejection = yield* rejectionOf(onRecoveryPoint(event))
      // Assess
      assert.deepStrictEqual(rejection, {
        tag: "UnprocessableEvent",
        reason: `"Recovery Point State Change" event ${event.id} for ${event.detail.resourceArn} names no recovery point (resources[] is empty)`
      })
      assert.deepStrictEqual(local.state(), nothingDone)
    }).pipe(Effect.provide(local.layer))
  }

  it.effect("rejects a volume-mode recovery point event that names no recovery point, and restores nothing", () =>
    rejectsWithoutRecoveryPoint(recoveryPointCompleted("rp-volume-no-arn", ebsVolume("volumenoarn", "archive-volume")))
  )

  it.effect("rejects a dump-mode recovery point event that names no recovery point, and restores nothing", () =>
    rejectsWithoutRecoveryPoint(recoveryPointCompleted("rp-dump-no-arn", { resourceType: "RDS", resourceArn: `arn:aws:rds:${REGION}:${ACCOUNT}:db:orders`, vaultName: "Default" }))
  )

  it.effect("rejects a direct-mode recovery point event that names no recovery point, and hands on nothing", () =>
    rejectsWithoutRecoveryPoint(recoveryPointCompleted("rp-direct-no-arn", ebsVolume("directnoarn", "Default")))
  )

  it.effect("ignores a recovery point event without a recovery point that the policy does not archive", () => {
    // Prepare: no rule archives DynamoDB tables
    const local = restorer()
    const table = { resourceType: "DynamoDB", resourceArn: `arn:aws:dynamodb:${REGION}:${ACCOUNT}:table/orders`, vaultName: "archive-volume" }
    return Effect.gen(function* () {
      // Act
      const handled = yield* Effect.either(onRecoveryPoint(recoveryPointCompleted("rp-table-no-arn", table)))
      // Assess
      assert.isTrue(Either.isRight(handled))
      assert.deepStrictEqual(local.state(), nothingDone)
    }).pipe(Effect.provide(local.layer))
  })

  it.effect("hands a direct-mode plan to the streamer in a Restore Completed that restored nothing, with no ledger step, volume or instance", () => {
    // Prepare: an EBS recovery point that only the catch-all direct rule matches
    const local = restorer()
    const recoveryPointArn = `arn:aws:ec2:${REGION}::snapshot/snap-0handoff000000001`
    return Effect.gen(function* () {
      // Act
      yield* onRecoveryPoint(recoveryPointCompleted("rp-direct", ebsVolume("handoff", "Default"), recoveryPointArn))
      // Assess: the plan as the policy decided it, and nothing made
      assert.deepStrictEqual(yield* local.restores, [
        {
          schemaVersion: 1,
          correlationId: recoveryPointArn,
          idempotencyKey: `${recoveryPointArn}#${DIRECT_HAND_OFF_ACTION}`,
          status: "not-needed",
          resourceType: "EBS",
          resourceArn: ebsVolume("handoff", "Default").resourceArn,
          backupVaultName: "Default",
          snapshotId: "snap-0handoff000000001",
          plan: { rule: "direct", mode: "direct", compression: "zstd", deleteSourceAfterVerify: false }
        }
      ])
      assert.deepStrictEqual(local.state(), { ...nothingDone, published: 1 })
    }).pipe(Effect.provide(local.layer))
  })

  it.effect("records and announces a failed restore for a volume-mode recovery point that is not an EBS snapshot", () => {
    // Prepare: a recovery point the restorer can name but never restore
    const local = restorer()
    const recoveryPointArn = `arn:aws:backup:${REGION}:${ACCOUNT}:recovery-point:not-a-snapshot`
    return Effect.gen(function* () {
      // Act
      yield* onRecoveryPoint(recoveryPointCompleted("rp-not-snapshot", ebsVolume("notsnapshot", "archive-volume"), recoveryPointArn))
      // Assess: a failed step in the ledger, the same reason in the event, and no volume made
      const reason = `recovery point "${recoveryPointArn}" is not an EBS snapshot ARN`
      assert.deepStrictEqual(local.state(), { ledgerSteps: [`${recoveryPointArn} restore:volume`], published: 1, awsCalls: 0 })
      assert.deepStrictEqual(
        (yield* local.restores).map((detail) => [detail.correlationId, detail.status, detail.reason]),
        [[recoveryPointArn, "failed", reason]]
      )
    }).pipe(Effect.provide(local.layer))
  })

  it.effect("names the protected resource in every Restore Completed, whatever the mode and however the restore ended", () => {
    // Prepare: a volume restored in full, a volume-mode and a dump-mode point that cannot be restored, and a direct-mode hand-off
    const local = restorer()
    local.mocks.ec2.on(DescribeAvailabilityZonesCommand).resolves({ AvailabilityZones: [{ ZoneName: `${REGION}a` }] })
    local.mocks.ec2.on(DescribeSnapshotsCommand).resolves({ Snapshots: [{ SnapshotId: "snap-0restored00000001", VolumeSize: 1 }] })
    local.mocks.ec2.on(CreateVolumeCommand).resolves({ VolumeId: "vol-0restored00000001", Size: 1 })
    local.mocks.ec2.on(DescribeVolumesCommand).resolves({ Volumes: [{ VolumeId: "vol-0restored00000001", State: "available" }] })
    const restored = ebsVolume("restored", "archive-volume")
    const unrestorable = ebsVolume("unrestorable", "archive-volume")
    const database = { resourceType: "RDS", resourceArn: `arn:aws:rds:${REGION}:${ACCOUNT}:db:orders`, vaultName: "Default" }
    const handedOff = ebsVolume("handedoff", "Default")
    return Effect.gen(function* () {
      // Act
      yield* onRecoveryPoint(recoveryPointCompleted("rp-restored", restored, `arn:aws:ec2:${REGION}::snapshot/snap-0restored00000001`))
      yield* onRecoveryPoint(recoveryPointCompleted("rp-unrestorable", unrestorable, `arn:aws:backup:${REGION}:${ACCOUNT}:recovery-point:unrestorable`))
      yield* onRecoveryPoint(recoveryPointCompleted("rp-not-a-db-snapshot", database, `arn:aws:backup:${REGION}:${ACCOUNT}:recovery-point:not-a-db-snapshot`))
      yield* onRecoveryPoint(recoveryPointCompleted("rp-handed-off", handedOff, `arn:aws:ec2:${REGION}::snapshot/snap-0handedoff0000001`))
      // Assess: each event names the resource its recovery point is a backup of
      assert.deepStrictEqual(
        (yield* local.restores).map((detail) => [detail.plan.mode, detail.status, detail.resourceArn]),
        [
          ["volume", "restored", restored.resourceArn],
          ["volume", "failed", unrestorable.resourceArn],
          ["dump", "failed", database.resourceArn],
          ["direct", "not-needed", handedOff.resourceArn]
        ]
      )
    }).pipe(Effect.provide(local.layer))
  })
})

describe("the restorer's archive handler", () => {
  it.effect("rejects volume and dump archives that name nothing restored, and deletes nothing", () => {
    // Prepare
    const local = restorer()
    const volumePoint = `arn:aws:ec2:${REGION}::snapshot/snap-0archived000001`
    const dumpPoint = `arn:aws:rds:${REGION}:${ACCOUNT}:snapshot:awsbackup:job-orders`
    return Effect.gen(function* () {
      // Act
      const rejections = [
        yield* rejectionOf(onArchiveCompleted(archiveCompleted("archive-volume-unnamed", "volume", volumePoint))),
        yield* rejectionOf(onArchiveCompleted(archiveCompleted("archive-dump-unnamed", "dump", dumpPoint)))
      ]
      // Assess
      assert.deepStrictEqual(rejections, [
        {
          tag: "UnprocessableEvent",
          reason: `"Archive Completed" event archive-volume-unnamed for ${volumePoint} (mode volume) names neither a restored volume nor a restored DB instance to delete`
        },
        {
          tag: "UnprocessableEvent",
          reason: `"Archive Completed" event archive-dump-unnamed for ${dumpPoint} (mode dump) names neither a restored volume nor a restored DB instance to delete`
        }
      ])
      assert.deepStrictEqual(local.state(), nothingDone)
    }).pipe(Effect.provide(local.layer))
  })

  it.effect("deletes the restored volume that an archive names, whatever its outcome", () => {
    // Prepare: a failed and a finished archive, each naming the volume restored for it
    const local = restorer()
    local.mocks.ec2.on(DeleteVolumeCommand).resolves({})
    const named = (id: string, status: "archived" | "failed", volumeId: string) => {
      const unnamed = archiveCompleted(id, "volume", `arn:aws:ec2:${REGION}::snapshot/snap-0${volumeId}`, status)
      return { ...unnamed, detail: { ...unnamed.detail, restoredVolumeId: volumeId } }
    }
    return Effect.gen(function* () {
      // Act
      yield* onArchiveCompleted(named("archive-failed", "failed", "vol-0failedarchive01"))
      yield* onArchiveCompleted(named("archive-done", "archived", "vol-0donearchive001"))
      // Assess: each volume deleted, and nothing else asked of AWS
      assert.deepStrictEqual(
        local.mocks.ec2.commandCalls(DeleteVolumeCommand).map((call) => call.args[0].input),
        [{ VolumeId: "vol-0failedarchive01" }, { VolumeId: "vol-0donearchive001" }]
      )
      assert.deepStrictEqual(local.state(), { ...nothingDone, awsCalls: 2 })
    }).pipe(Effect.provide(local.layer))
  })
})
