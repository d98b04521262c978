import { DeleteBackupCommand } from "@aws-sdk/client-dynamodb"
import { Effect, Layer } from "effect"
import { AwsConfig, DynamoDb, Ec2, RecoveryPoints, awsCall, isEmulated, type Backup } from "@backup-actions/aws"
import { deregisterWithSnapshots } from "./ami-image"
import { parseAmiArn, parseDynamoDbBackupArn } from "./arns"

/**
 * The emulator has no AWS Backup recovery points: there the resource behind one is deleted
 * instead (the DynamoDB backup; the AMI, deregistered, and its snapshots), as the shared
 * layer deletes an EBS snapshot, which exercises the same decision path. Against AWS,
 * Backup's DeleteRecoveryPoint (the shared layer) is used.
 */
export const viaEmulatedSources = Layer.effect(
  RecoveryPoints,
  Effect.map(Effect.all([DynamoDb, Ec2]), ([dynamodb, ec2]) => ({
    delete: (ref) => {
      const backup = parseDynamoDbBackupArn(ref.recoveryPointArn)
      const ami = parseAmiArn(ref.recoveryPointArn)
      if (backup !== undefined) {
        return awsCall("dynamodb:DeleteBackup", (abortSignal) => dynamodb.send(new DeleteBackupCommand({ BackupArn: backup.backupArn }), { abortSignal })).pipe(
          Effect.asVoid
        )
      }
      if (ami !== undefined) return deregisterWithSnapshots(ami.imageId).pipe(Effect.provideService(Ec2, ec2), Effect.asVoid)
      return Effect.logWarning(`recovery point ${ref.recoveryPointArn} is neither a DynamoDB backup nor an AMI; nothing deleted`)
    }
  }))
)

/** Backup's API against AWS, the resource behind the recovery point against the emulator. */
export const ExporterRecoveryPointsLive: Layer.Layer<RecoveryPoints, never, AwsConfig | Backup | DynamoDb | Ec2> = Layer.unwrapEffect(
  Effect.map(AwsConfig, (settings): Layer.Layer<RecoveryPoints, never, Backup | DynamoDb | Ec2> =>
    isEmulated(settings) ? viaEmulatedSources : RecoveryPoints.viaBackup
  )
)
