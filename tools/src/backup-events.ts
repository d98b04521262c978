import { GetItemCommand } from "@aws-sdk/client-dynamodb"
import { unmarshall } from "@aws-sdk/util-dynamodb"
import { Duration, Effect, Schedule, Schema } from "effect"
import { DynamoDb, awsCall } from "@backup-actions/aws"
import { EMULATOR_ACCOUNT, EMULATOR_REGION, sendRecoveryPointEvent } from "@backup-actions/local"

/** Kept here too, beside the other senders, for the tools that import it from this module. */
export { sendRecoveryPointEvent }

export const snapshotArn = (snapshotId: string): string => `arn:aws:ec2:${EMULATOR_REGION}::snapshot/${snapshotId}`

/** The event AWS Backup sends when an EBS snapshot recovery point is complete. */
/** The volume whose snapshots the demo and the tests send, unless they name another. */
export const volumeArn = (volumeId: string): string => `arn:aws:ec2:${EMULATOR_REGION}:${EMULATOR_ACCOUNT}:volume/${volumeId}`
export const DEMO_VOLUME_ARN = volumeArn("vol-0demo000000000000")

export const sendRecoveryPointCompleted = (options: { readonly snapshotId: string; readonly vault: string; readonly volumeId?: string }) =>
  sendRecoveryPointEvent({
    recoveryPointArn: snapshotArn(options.snapshotId),
    resourceArn: options.volumeId === undefined ? DEMO_VOLUME_ARN : volumeArn(options.volumeId),
    resourceType: "EBS",
    vault: options.vault
  })

export class StepTimedOut extends Schema.TaggedError<StepTimedOut>()("StepTimedOut", { action: Schema.String, recoveryPointArn: Schema.String }) {}
class StillRunning extends Schema.TaggedError<StillRunning>()("StillRunning", {}) {}

/** Waits until the ledger shows the step finished and its outcome announced, and returns its record. */
export const waitForStep = (ledgerTable: string, recoveryPointArn: string, action: string, timeout: Duration.DurationInput = "10 minutes") =>
  Effect.gen(function* () {
    const dynamodb = yield* DynamoDb
    const item = yield* awsCall("dynamodb:GetItem", (abortSignal) =>
      dynamodb.send(new GetItemCommand({ TableName: ledgerTable, Key: { pk: { S: recoveryPointArn }, sk: { S: action } }, ConsistentRead: true }), { abortSignal })
    )
    const record = item.Item === undefined ? undefined : unmarshall(item.Item)
    // Only a finished step ends the wait. (The emulator applies an update in place, so a read
    // can even see an item that has its key and nothing else yet.)
    // A finished step's outcome is final once it is announced (a source's deletion amends it before).
    if (record === undefined || (record["status"] !== "succeeded" && record["status"] !== "failed") || record["published"] === false) return yield* new StillRunning()
    return record
  }).pipe(
    Effect.retry({ schedule: Schedule.spaced(Duration.millis(250)), while: (error) => error._tag === "StillRunning" }),
    Effect.timeoutFail({ duration: timeout, onTimeout: () => new StepTimedOut({ action, recoveryPointArn }) })
  )
