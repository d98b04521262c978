import { DeleteBackupCommand } from "@aws-sdk/client-dynamodb"
import { Effect, Layer } from "effect"
import { AwsConfig, DynamoDb, RecoveryPoints, awsCall, isEmulated, type Backup } from "@backup-actions/aws"
import { parseDynamoDbBackupArn } from "./arns"

/**
 * The emulator has no AWS Backup recovery points: there the DynamoDB backup behind one is
 * deleted instead, as the shared layer deletes an EBS snapshot, which exercises the same
 * decision path. Against AWS, Backup's DeleteRecoveryPoint (the shared layer) is used.
 */
export const viaDynamoDbBackups = Layer.effect(
  RecoveryPoints,
  Effect.map(DynamoDb, (dynamodb) => ({
    delete: (ref) => {
      const backup = parseDynamoDbBackupArn(ref.recoveryPointArn)
      return backup === undefined
        ? Effect.logWarning(`recovery point ${ref.recoveryPointArn} is not a DynamoDB backup; nothing deleted`)
        : awsCall("dynamodb:DeleteBackup", (abortSignal) => dynamodb.send(new DeleteBackupCommand({ BackupArn: backup.backupArn }), { abortSignal })).pipe(
            Effect.asVoid
          )
    }
  }))
)

/** Backup's API against AWS, the DynamoDB backup against the emulator. */
export const ExporterRecoveryPointsLive: Layer.Layer<RecoveryPoints, never, AwsConfig | Backup | DynamoDb> = Layer.unwrapEffect(
  Effect.map(AwsConfig, (settings): Layer.Layer<RecoveryPoints, never, Backup | DynamoDb> =>
    isEmulated(settings) ? viaDynamoDbBackups : RecoveryPoints.viaBackup
  )
)
