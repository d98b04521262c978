import { PutEventsCommand } from "@aws-sdk/client-eventbridge"
import { Effect } from "effect"
import { EventBridge, awsCall } from "@backup-actions/aws"
import { RecoveryPointStateChange } from "@backup-actions/contracts"
import { EMULATOR_ACCOUNT, EMULATOR_REGION } from "./emulator"

/**
 * Puts an AWS Backup "Recovery Point State Change" (COMPLETED unless told) on the default bus,
 * exactly as AWS Backup sends it (the recovery point in `resources[]` only, the detail's fields
 * as AWS documents them), so that it reaches the services through the forward rule as a real
 * one would (locally through the forwarding leg). Without a recovery point it names none at all
 * (`resources` empty), which is how tests show what the services do with an event they can
 * never act on.
 */
export const sendRecoveryPointEvent = (options: {
  readonly recoveryPointArn?: string
  readonly resourceArn: string
  /** As AWS Backup names it: EBS, EC2, RDS, Aurora, DynamoDB, ... */
  readonly resourceType: string
  readonly vault: string
  readonly status?: string
}) =>
  Effect.gen(function* () {
    const events = yield* EventBridge
    const recoveryPointArn = options.recoveryPointArn
    const now = new Date()
    const result = yield* awsCall("events:PutEvents", (abortSignal) =>
      events.send(
        new PutEventsCommand({
          Entries: [
            {
              EventBusName: "default",
              Source: RecoveryPointStateChange.source,
              DetailType: RecoveryPointStateChange.detailType,
              Resources: recoveryPointArn === undefined ? [] : [recoveryPointArn],
              Detail: JSON.stringify({
                backupVaultName: options.vault,
                backupVaultArn: `arn:aws:backup:${EMULATOR_REGION}:${EMULATOR_ACCOUNT}:backup-vault:${options.vault}`,
                creationDate: now.toISOString(),
                iamRoleArn: `arn:aws:iam::${EMULATOR_ACCOUNT}:role/service-role/AWSBackupDefaultServiceRole`,
                resourceType: options.resourceType,
                resourceArn: options.resourceArn,
                status: options.status ?? "COMPLETED",
                isEncrypted: "false",
                storageClass: "WARM",
                completionDate: now.toISOString()
              })
            }
          ]
        }),
        { abortSignal }
      )
    )
    if ((result.FailedEntryCount ?? 0) > 0) {
      return yield* Effect.dieMessage(`PutEvents refused the event: ${result.Entries?.[0]?.ErrorMessage ?? "unknown"}`)
    }
  })
