import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { CreateSnapshotCommand, CreateVolumeCommand } from "@aws-sdk/client-ec2"
import { Effect } from "effect"
import { Ec2, awsCall } from "@backup-actions/aws"
import type { Policy } from "@backup-actions/config"
import { ReplicaCompleted, RecoveryPointStateChange, type DetailOf, type EventOf } from "@backup-actions/contracts"
import { DLQ_REASON_ATTRIBUTE, DLQ_SERVICE_ATTRIBUTE, pollOnce } from "@backup-actions/consumer"
import {
  EMULATOR_ACCOUNT,
  EMULATOR_REGION,
  type ServiceHarness,
  type Tap,
  drKeyAliasArn,
  drTopology,
  ledgerSteps,
  messagesIn,
  provisionDr,
  receiveMessages,
  sendRecoveryPointEvent,
  startServiceHarness
} from "@backup-actions/local"
import { plan } from "./mock-accounts"
import { SharerServices, onRecoveryPoint, subscriptions } from "./service"

/** The sharer's queue, DLQ, rules and ledger on the emulator; events arrive through the forwarding rule as AWS Backup's do. */
let harness: ServiceHarness
let published: Tap

/** Another region of the emulator's account, with its own key for replicas. */
const sameAccountDr = drTopology({ destinationAccount: EMULATOR_ACCOUNT, destinationRegion: "us-west-2", keyAlias: "alias/sharer-service-test-dr" })

/** Gold-tier volumes replicated within the account to another region, whatever their vault; the rest of the Default vault's EBS into the DR account. */
const policy: Policy = {
  rules: [
    {
      name: "dr-gold",
      match: { resourceTypes: ["EBS"], tags: { "dr-tier": "gold" } },
      replicate: { destinationAccount: EMULATOR_ACCOUNT, destinationRegion: sameAccountDr.destinationRegion, kmsKeyId: drKeyAliasArn(sameAccountDr), retentionDays: 30, maxConcurrentCopies: 20 }
    },
    { name: "dr", match: { resourceTypes: ["EBS"], vaults: ["Default"] }, replicate: plan() }
  ]
}

beforeAll(async () => {
  harness = await startServiceHarness({ prefix: "sharer-service-test", service: "sharer" })
  published = await harness.tapBus(ReplicaCompleted.pattern(), "replicas")
})
afterAll(() => harness.stop())

const sharerLayer = () => harness.layer(SharerServices, policy)

describe("the sharer's recovery-point handler", () => {
  it.live("sends a recovery point event that names no recovery point to its DLQ with the reason, and ignores one its policy does not replicate", () =>
    Effect.gen(function* () {
      // Prepare: an EBS event the policy replicates and an RDS event it does not, neither naming its recovery point
      const ebsVolume = `arn:aws:ec2:${EMULATOR_REGION}:${EMULATOR_ACCOUNT}:volume/vol-0noarn0000000001`
      const rdsInstance = `arn:aws:rds:${EMULATOR_REGION}:${EMULATOR_ACCOUNT}:db:no-arn`
      yield* sendRecoveryPointEvent({ resourceType: "EBS", resourceArn: ebsVolume, vault: "Default" })
      yield* sendRecoveryPointEvent({ resourceType: "RDS", resourceArn: rdsInstance, vault: "Default" })
      // Act: the sharer's consumer, one message per receive, until both came
      let received = 0
      for (let round = 0; round < 20 && received < 2; round += 1) {
        received += yield* pollOnce(subscriptions, { service: "sharer", waitTimeSeconds: 1 })
      }
      // Assess: only the EBS event is in the DLQ, with the reason and the service; the queue is empty
      assert.strictEqual(received, 2)
      const dead = yield* receiveMessages(harness.stack.queues.sharer?.deadLetterUrl ?? "")
      assert.strictEqual(dead.length, 1)
      const event: { id: string; detail: { resourceArn: string } } = JSON.parse(dead[0]?.Body ?? "{}")
      assert.strictEqual(event.detail.resourceArn, ebsVolume)
      assert.strictEqual(
        dead[0]?.MessageAttributes?.[DLQ_REASON_ATTRIBUTE]?.StringValue,
        `"Recovery Point State Change" event ${event.id} for ${ebsVolume} names no recovery point (resources[] is empty)`
      )
      assert.strictEqual(dead[0]?.MessageAttributes?.[DLQ_SERVICE_ATTRIBUTE]?.StringValue, "sharer")
      assert.strictEqual(yield* messagesIn(harness.stack.queues.sharer?.url ?? ""), 0)
    }).pipe(Effect.provide(sharerLayer()))
  )
})

/** A completed snapshot of a fresh volume with the given tags: the volume's ARN and the snapshot's. */
const snapshotOfTaggedVolume = (tags: Record<string, string>) =>
  Effect.gen(function* () {
    const ec2 = yield* Ec2
    const tagged = Object.keys(tags).length === 0 ? {} : { TagSpecifications: [{ ResourceType: "volume" as const, Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })) }] }
    const volume = yield* awsCall("ec2:CreateVolume", (abortSignal) => ec2.send(new CreateVolumeCommand({ AvailabilityZone: `${EMULATOR_REGION}a`, Size: 1, ...tagged }), { abortSignal }))
    const snapshot = yield* awsCall("ec2:CreateSnapshot", (abortSignal) => ec2.send(new CreateSnapshotCommand({ VolumeId: volume.VolumeId }), { abortSignal }))
    return {
      resourceArn: `arn:aws:ec2:${EMULATOR_REGION}:${EMULATOR_ACCOUNT}:volume/${volume.VolumeId ?? ""}`,
      recoveryPointArn: `arn:aws:ec2:${EMULATOR_REGION}::snapshot/${snapshot.SnapshotId ?? ""}`
    }
  })

const recoveryPointCompleted = (id: string, source: { readonly resourceArn: string; readonly recoveryPointArn: string }, vault: string): EventOf<typeof RecoveryPointStateChange> => ({
  version: "0",
  account: EMULATOR_ACCOUNT,
  time: "2026-08-01T00:00:00Z",
  region: EMULATOR_REGION,
  id,
  source: RecoveryPointStateChange.source,
  "detail-type": RecoveryPointStateChange.detailType,
  resources: [source.recoveryPointArn],
  detail: { status: "COMPLETED", resourceType: "EBS", resourceArn: source.resourceArn, backupVaultName: vault }
})

describe("the sharer's replica selection by tags", () => {
  it.live("replicates the snapshot of a volume that carries the rule's tag, and not that of a volume without it", () =>
    Effect.gen(function* () {
      // Prepare: the destination's key, and two snapshots in a vault no other rule names
      yield* provisionDr(sameAccountDr)
      const gold = yield* snapshotOfTaggedVolume({ "dr-tier": "gold", team: "orders" })
      const plain = yield* snapshotOfTaggedVolume({ team: "orders" })
      const before = yield* ledgerSteps(harness.stack.ledgerTable)
      // Act
      yield* onRecoveryPoint(recoveryPointCompleted("rp-gold", gold, "nightly"))
      yield* onRecoveryPoint(recoveryPointCompleted("rp-plain", plain, "nightly"))
      // Assess: one step, for the tagged volume's snapshot, and its replica announced in the other region on the rule's key
      const after = yield* ledgerSteps(harness.stack.ledgerTable)
      assert.deepStrictEqual(
        after.filter((step) => !before.includes(step)),
        [`${gold.recoveryPointArn} replicate:${EMULATOR_ACCOUNT}:${sameAccountDr.destinationRegion}`]
      )
      const announced = (yield* published.drain(1)).map((body): { detail: DetailOf<typeof ReplicaCompleted> } => JSON.parse(body))
      assert.deepStrictEqual(
        announced.map(({ detail }) => [detail.sourceArn, detail.status, detail.rule, detail.region, detail.reason]),
        [[gold.recoveryPointArn, "replicated", "dr-gold", sameAccountDr.destinationRegion, undefined]]
      )
    }).pipe(Effect.provide(sharerLayer()))
  )
})
