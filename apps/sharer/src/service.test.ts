import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import type { Policy } from "@backup-actions/config"
import { DLQ_REASON_ATTRIBUTE, DLQ_SERVICE_ATTRIBUTE, pollOnce } from "@backup-actions/consumer"
import {
  EMULATOR_ACCOUNT,
  EMULATOR_REGION,
  type ServiceHarness,
  messagesIn,
  receiveMessages,
  sendRecoveryPointEvent,
  startServiceHarness
} from "@backup-actions/local"
import { plan } from "./mock-accounts"
import { SharerServices, subscriptions } from "./service"

/** The sharer's queue, DLQ, rules and ledger on the emulator; events arrive through the forwarding rule as AWS Backup's do. */
let harness: ServiceHarness
const policy: Policy = { rules: [{ name: "dr", match: { resourceTypes: ["EBS"] }, replicate: plan() }] }

beforeAll(async () => {
  harness = await startServiceHarness({ prefix: "sharer-service-test", service: "sharer" })
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
        `"Recovery Point State Change" event ${event.id} for ${ebsVolume} names no recovery point (neither resources[] nor detail.recoveryPointArn)`
      )
      assert.strictEqual(dead[0]?.MessageAttributes?.[DLQ_SERVICE_ATTRIBUTE]?.StringValue, "sharer")
      assert.strictEqual(yield* messagesIn(harness.stack.queues.sharer?.url ?? ""), 0)
    }).pipe(Effect.provide(sharerLayer()))
  )
})
