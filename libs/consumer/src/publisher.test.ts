import { assert, describe, it } from "@effect/vitest"
import { EventBridgeClient, PutEventsCommand } from "@aws-sdk/client-eventbridge"
import { mockClient } from "aws-sdk-client-mock"
import { Effect, Layer } from "effect"
import { EventBridge } from "@backup-actions/aws"
import { RestoreCompleted } from "@backup-actions/contracts"
import { ServiceSettings } from "@backup-actions/config"
import { Publisher } from "./publisher"

const detail = {
  schemaVersion: 1 as const,
  correlationId: "arn:aws:ec2:us-east-1::snapshot/snap-1",
  idempotencyKey: "arn:aws:ec2:us-east-1::snapshot/snap-1#archive",
  status: "failed" as const,
  resourceType: "EBS",
  backupVaultName: "archive-volume",
  snapshotId: "snap-1",
  plan: { rule: "r", mode: "volume" as const, compression: "zstd" as const, deleteSourceAfterVerify: false },
  reason: "no such snapshot"
}

const publisherWith = (client: EventBridgeClient) =>
  Publisher.Live.pipe(
    Layer.provide(Layer.succeed(EventBridge, client)),
    Layer.provide(
      ServiceSettings.layer({ busName: "bus", artifactBucket: "b", ledgerTable: "t", queueUrl: "q", deadLetterQueueUrl: "d", workDir: "/tmp" })
    )
  )

// The emulator never refuses a well-formed entry, so the refusal path is checked with a mocked client.
describe("publishing owned events", () => {
  it.effect("sends the encoded detail to the service bus with the event's source and detail-type", () =>
    Effect.gen(function* () {
      const client = new EventBridgeClient({ region: "us-east-1" })
      const mock = mockClient(client)
      mock.on(PutEventsCommand).resolves({ FailedEntryCount: 0, Entries: [{ EventId: "1" }] })
      yield* Effect.flatMap(Publisher, (publisher) => publisher.publish(RestoreCompleted, detail, [detail.correlationId])).pipe(
        Effect.provide(publisherWith(client))
      )
      assert.deepStrictEqual(mock.commandCalls(PutEventsCommand)[0]?.args[0].input, {
        Entries: [
          {
            EventBusName: "bus",
            Source: "backup-actions",
            DetailType: "Restore Completed",
            Detail: JSON.stringify(detail),
            Resources: [detail.correlationId]
          }
        ]
      })
    })
  )

  it.effect("fails with the entry's error code when EventBridge reports a failed entry", () =>
    Effect.gen(function* () {
      const client = new EventBridgeClient({ region: "us-east-1" })
      mockClient(client)
        .on(PutEventsCommand)
        .resolves({ FailedEntryCount: 1, Entries: [{ ErrorCode: "InternalFailure", ErrorMessage: "try again" }] })
      const error = yield* Effect.flip(
        Effect.flatMap(Publisher, (publisher) => publisher.publish(RestoreCompleted, detail)).pipe(Effect.provide(publisherWith(client)))
      )
      assert.strictEqual(error._tag, "PublishFailed")
      assert.strictEqual(error._tag === "PublishFailed" ? error.errorCode : "", "InternalFailure")
    })
  )
})
