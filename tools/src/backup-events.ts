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

/**
 * Whether a ledger record shows its step finished, with its outcome written and announced.
 * The emulator applies an update in place, attribute by attribute, so a read can see a finish
 * half written: a key and nothing else, or a status whose outcome is not there yet. A record
 * counts only when it has every part a finish writes, and `waitForStep` reads it twice.
 */
export const isSettled = (record: Record<string, unknown> | undefined): record is Record<string, unknown> =>
  record !== undefined &&
  (record["status"] === "succeeded" || record["status"] === "failed") &&
  record["finishedAt"] !== undefined &&
  record["outcome"] !== undefined &&
  // A finished step's outcome is final once it is announced (a source's deletion amends it before).
  record["published"] !== false

/** The same settled record on two reads in a row: a finish being written in place is not. */
export const settledTwice = (previous: Record<string, unknown> | undefined, current: Record<string, unknown> | undefined): boolean =>
  isSettled(previous) && isSettled(current) && JSON.stringify(previous) === JSON.stringify(current)

/** Waits until the ledger shows the step finished and its outcome announced, and returns its record. */
export const waitForStep = (ledgerTable: string, recoveryPointArn: string, action: string, timeout: Duration.DurationInput = "10 minutes") =>
  Effect.gen(function* () {
    const dynamodb = yield* DynamoDb
    const read = Effect.map(
      awsCall("dynamodb:GetItem", (abortSignal) =>
        dynamodb.send(new GetItemCommand({ TableName: ledgerTable, Key: { pk: { S: recoveryPointArn }, sk: { S: action } }, ConsistentRead: true }), { abortSignal })
      ),
      (item) => (item.Item === undefined ? undefined : unmarshall(item.Item))
    )
    const first = yield* read
    if (!isSettled(first)) return yield* new StillRunning()
    yield* Effect.sleep(Duration.millis(100))
    const second = yield* read
    if (!settledTwice(first, second)) return yield* new StillRunning()
    return second as NonNullable<typeof second>
  }).pipe(
    Effect.retry({ schedule: Schedule.spaced(Duration.millis(250)), while: (error) => error._tag === "StillRunning" }),
    Effect.timeoutFail({ duration: timeout, onTimeout: () => new StepTimedOut({ action, recoveryPointArn }) })
  )
