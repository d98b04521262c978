import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { RecoveryPointStateChange } from "@backup-actions/contracts"
import { requireRecoveryPoint } from "./unprocessable"

const SNAPSHOT_ARN = "arn:aws:ec2:us-east-1::snapshot/snap-0123456789abcdef0"
const VOLUME_ARN = "arn:aws:ec2:us-east-1:123456789012:volume/vol-0abc1234def567890"

/** A COMPLETED recovery point event as the consumer hands it to a handler, decoded by its contract. */
const recoveryPointEvent = (resources: ReadonlyArray<string>, extraDetail: Record<string, unknown> = {}) =>
  RecoveryPointStateChange.decode({
    version: "0",
    id: "3c1f6b5e-2f1d-4b8c-9d55-2a6a2e3c9c11",
    "detail-type": "Recovery Point State Change",
    source: "aws.backup",
    account: "123456789012",
    time: "2026-11-20T03:14:07Z",
    region: "us-east-1",
    resources,
    detail: {
      backupVaultName: "archive-direct",
      resourceArn: VOLUME_ARN,
      resourceType: "EBS",
      status: "COMPLETED",
      ...extraDetail
    }
  })

describe("requiring a recovery point", () => {
  it.effect("takes the recovery point from resources[], where AWS Backup puts it", () =>
    Effect.gen(function* () {
      // Prepare
      const event = yield* recoveryPointEvent([SNAPSHOT_ARN])
      // Act
      const arn = yield* requireRecoveryPoint(event)
      // Assess
      assert.strictEqual(arn, SNAPSHOT_ARN)
    })
  )

  it.effect("does not look for the recovery point in the detail, where AWS Backup never puts it", () =>
    Effect.gen(function* () {
      // Prepare
      const event = yield* recoveryPointEvent([], { recoveryPointArn: SNAPSHOT_ARN })
      // Act
      const rejection = yield* Effect.flip(requireRecoveryPoint(event))
      // Assess
      assert.include(rejection.reason, "names no recovery point")
    })
  )

  it.effect("rejects an event that names no recovery point, saying which event and resource", () =>
    Effect.gen(function* () {
      // Prepare
      const event = yield* recoveryPointEvent([])
      // Act
      const rejection = yield* Effect.flip(requireRecoveryPoint(event))
      // Assess
      assert.strictEqual(rejection._tag, "UnprocessableEvent")
      assert.strictEqual(
        rejection.reason,
        `"Recovery Point State Change" event 3c1f6b5e-2f1d-4b8c-9d55-2a6a2e3c9c11 for ${VOLUME_ARN} names no recovery point (resources[] is empty)`
      )
    })
  )
})
