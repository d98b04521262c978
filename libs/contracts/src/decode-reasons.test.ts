import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { ArchiveCompleted, MAX_DECODE_REASON_LENGTH, RecoveryPointStateChange, RestoreCompleted, describeDecodeFailure, route, subscribe } from "./index"
import { recoveryPointCompletedEbs } from "./fixtures/aws-backup-events"

const subscriptions = [
  subscribe(RecoveryPointStateChange, () => Effect.void),
  subscribe(RestoreCompleted, () => Effect.void),
  subscribe(ArchiveCompleted, () => Effect.void)
]

/** The reason a dead letter of this body would carry. */
const reasonFor = (body: string) => Effect.flip(route(body, subscriptions)).pipe(Effect.map(describeDecodeFailure))

const withDetail = (detail: Record<string, unknown>) => JSON.stringify({ ...recoveryPointCompletedEbs, detail })

describe("the reason a malformed event is dead-lettered with", () => {
  it.effect("names a missing field by its path", () =>
    Effect.gen(function* () {
      // Prepare
      const { backupVaultName: _vault, ...detail } = recoveryPointCompletedEbs.detail
      // Act
      const reason = yield* reasonFor(withDetail(detail))
      // Assess
      assert.strictEqual(reason, 'malformed "Recovery Point State Change" event: detail.backupVaultName is missing')
    })
  )

  it.effect("names a field of the wrong type with what it should be and what it was", () =>
    Effect.gen(function* () {
      // Prepare
      const body = withDetail({ ...recoveryPointCompletedEbs.detail, status: 42 })
      // Act
      const reason = yield* reasonFor(body)
      // Assess
      assert.strictEqual(reason, 'malformed "Recovery Point State Change" event: detail.status: expected string, got 42')
    })
  )

  it.effect("names a nested field, and an entry of a list, by their whole path", () =>
    Effect.gen(function* () {
      // Prepare
      const nested = withDetail({ ...recoveryPointCompletedEbs.detail, createdBy: { backupPlanId: 7 } })
      const listed = JSON.stringify({ ...recoveryPointCompletedEbs, resources: ["arn:aws:ec2:us-east-1::snapshot/snap-1", 3] })
      // Act
      const reasons = [yield* reasonFor(nested), yield* reasonFor(listed)]
      // Assess
      assert.deepStrictEqual(reasons, [
        'malformed "Recovery Point State Change" event: detail.createdBy.backupPlanId: expected string, got 7',
        'malformed "Recovery Point State Change" event: resources[1]: expected string, got 3'
      ])
    })
  )

  it.effect("joins several issues, and says how many it left out when they do not fit", () =>
    Effect.gen(function* () {
      // Prepare: two issues, then every field of an owned event's detail missing
      const two = withDetail({ ...recoveryPointCompletedEbs.detail, status: 42, resourceArn: undefined })
      const many = JSON.stringify({
        version: "0", id: "e-1", "detail-type": "Restore Completed", source: "backup-actions", time: "2026-11-20T03:20:00Z", region: "us-east-1",
        resources: [], detail: { schemaVersion: 1, correlationId: 17 }
      })
      // Act
      const reasons = [yield* reasonFor(two), yield* reasonFor(many)]
      // Assess
      assert.strictEqual(reasons[0], 'malformed "Recovery Point State Change" event: detail.status: expected string, got 42; detail.resourceArn is missing')
      assert.match(reasons[1] ?? "", /^malformed "Restore Completed" event: detail\.correlationId: expected string, got 17; detail\.idempotencyKey is missing; .*; and \d+ more$/)
      for (const reason of reasons) assert.isBelow(reason.length, MAX_DECODE_REASON_LENGTH)
    })
  )

  it.effect("says an event's detail is not an object without spelling out its type", () =>
    Effect.gen(function* () {
      // Prepare
      const body = JSON.stringify({ ...recoveryPointCompletedEbs, detail: "COMPLETED" })
      // Act
      const reason = yield* reasonFor(body)
      // Assess
      assert.strictEqual(reason, 'malformed "Recovery Point State Change" event: detail: expected an object, got "COMPLETED"')
    })
  )

  it.effect("names the source and detail-type that no service subscribes to", () =>
    Effect.gen(function* () {
      // Prepare
      const body = JSON.stringify({ ...recoveryPointCompletedEbs, "detail-type": "Backup Vault State Change" })
      // Act
      const reason = yield* reasonFor(body)
      // Assess
      assert.strictEqual(reason, 'unknown event type: source "aws.backup", detail-type "Backup Vault State Change"')
    })
  )

  it.effect("says a body is not JSON, and where it stops being JSON", () =>
    Effect.gen(function* () {
      // Prepare
      const body = `{"source": "aws.backup", ${'"x": 1, '.repeat(200)}`
      // Act
      const reason = yield* reasonFor(body)
      // Assess
      assert.match(reason, /^malformed event: body is not JSON \(.*position \d+/)
      assert.isBelow(reason.length, MAX_DECODE_REASON_LENGTH)
    })
  )

  it.effect("names the envelope field that is missing or not a string before any contract is chosen", () =>
    Effect.gen(function* () {
      // Prepare + Act
      const reasons = yield* Effect.forEach([JSON.stringify({ source: "aws.backup" }), JSON.stringify({ source: 4, "detail-type": "x" }), "[1]"], reasonFor)
      // Assess
      assert.deepStrictEqual(reasons, [
        "malformed event: not an EventBridge event: detail-type is missing",
        "malformed event: not an EventBridge event: source: expected string, got 4",
        "malformed event: not an EventBridge event: expected an object, got [1]"
      ])
    })
  )

  it.effect("stays under 300 characters whatever the body carries", () =>
    Effect.gen(function* () {
      // Prepare: long values everywhere a reason quotes one
      const long = "y".repeat(2_000)
      const bodies = [
        JSON.stringify({ ...recoveryPointCompletedEbs, "detail-type": long }),
        JSON.stringify({ ...recoveryPointCompletedEbs, source: long }),
        withDetail({ ...recoveryPointCompletedEbs.detail, status: { text: long }, resourceType: [long], resourceArn: 1, backupVaultName: 2, iamRoleArn: 3, creationDate: 4 }),
        JSON.stringify({ ...recoveryPointCompletedEbs, detail: long })
      ]
      // Act
      const reasons = yield* Effect.forEach(bodies, reasonFor)
      // Assess
      for (const reason of reasons) assert.isBelow(reason.length, MAX_DECODE_REASON_LENGTH, reason)
      assert.match(reasons[2] ?? "", /^malformed "Recovery Point State Change" event: detail\.status: expected string, got \{"text":"y+…; /)
    })
  )
})
