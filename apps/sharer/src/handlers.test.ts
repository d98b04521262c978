import { assert, describe, it } from "@effect/vitest"
import { EC2Client } from "@aws-sdk/client-ec2"
import { KMSClient } from "@aws-sdk/client-kms"
import { RDSClient } from "@aws-sdk/client-rds"
import { mockClient } from "aws-sdk-client-mock"
import { Effect, Either, Layer } from "effect"
import { fixedAccountAccess, fixedProtectedResources, makeMemorySourceSharing } from "@backup-actions/aws/testing"
import { PolicySource, ServiceSettings, type Policy } from "@backup-actions/config"
import { UnprocessableEvent } from "@backup-actions/consumer"
import { makeMemoryPublisher } from "@backup-actions/consumer/testing"
import { makeMemoryLedger } from "@backup-actions/ledger/testing"
import { plan } from "./test-accounts"
import { onRecoveryPoint } from "./service"
import { CopySlots } from "./slots"
import { recoveryPointCompleted as recoveryPointEvent, testEnvelope } from "@backup-actions/contracts/testing"

const ACCOUNT = "111111111111"
const REGION = "us-east-1"

/** The Default vault's EBS replicated into the DR account; nothing else. */
const policy: Policy = { rules: [{ name: "dr", match: { resourceTypes: ["EBS"], vaults: ["Default"] }, replicate: plan() }] }

/**
 * The sharer's handler over an in-memory ledger, publisher and sharing, with mocked clients in
 * every account it could reach (none of which a test here expects it to call: `calls` says).
 */
const sharer = () => {
  const ledger = makeMemoryLedger()
  const publisher = makeMemoryPublisher()
  const sharing = makeMemorySourceSharing()
  const clients = { region: REGION, ec2: new EC2Client({ region: REGION }), kms: new KMSClient({ region: REGION }), rds: new RDSClient({ region: REGION }) }
  const mocks = [mockClient(clients.ec2), mockClient(clients.kms), mockClient(clients.rds)]
  const layer = Layer.mergeAll(
    ledger.layer,
    publisher.layer,
    sharing.layer,
    CopySlots.Live,
    fixedAccountAccess(() => clients),
    fixedProtectedResources(),
    PolicySource.layer(policy),
    ServiceSettings.layer({ busName: "bus", artifactBucket: "artifacts", ledgerTable: "ledger", queueUrl: "sharer-queue", deadLetterQueueUrl: "sharer-dlq", workDir: "/tmp" })
  )
  return { ledger, publisher, sharing, layer, calls: () => mocks.reduce((total, mock) => total + mock.calls().length, 0) }
}

const recoveryPointCompleted = (id: string, resourceType: string, resourceArn: string, recoveryPointArn?: string) =>
  recoveryPointEvent(testEnvelope(ACCOUNT, REGION), id, { resourceType, resourceArn, vaultName: "Default" }, recoveryPointArn)

describe("the sharer's recovery-point handler", () => {
  it.effect("rejects a recovery point event that names no recovery point with the reason, and ignores one its policy does not replicate", () => {
    // Prepare: an EBS event the policy replicates and an RDS event it does not, neither naming its recovery point
    const local = sharer()
    const ebsVolume = `arn:aws:ec2:${REGION}:${ACCOUNT}:volume/vol-0noarn0000000001`
    const rdsInstance = `arn:aws:rds:${REGION}:${ACCOUNT}:db:no-arn`
    const ebsEvent = recoveryPointCompleted("rp-ebs-no-arn", "EBS", ebsVolume)
    return Effect.gen(function* () {
      // Act
      const rejection = yield* Effect.flip(onRecoveryPoint(ebsEvent))
      const ignored = yield* Effect.either(onRecoveryPoint(recoveryPointCompleted("rp-rds-no-arn", "RDS", rdsInstance)))
      // Assess: the reason the DLQ gets for the EBS event; the RDS one handled without a step, an event or a call
      assert.instanceOf(rejection, UnprocessableEvent)
      assert.strictEqual(rejection.reason, `"Recovery Point State Change" event rp-ebs-no-arn for ${ebsVolume} names no recovery point (resources[] is empty)`)
      assert.isTrue(Either.isRight(ignored))
      assert.deepStrictEqual([...local.ledger.items.keys()], [])
      assert.deepStrictEqual(local.publisher.published, [])
      assert.deepStrictEqual(local.sharing.requests, [])
      assert.strictEqual(local.calls(), 0)
    }).pipe(Effect.provide(local.layer))
  })
})
