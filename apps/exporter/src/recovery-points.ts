import { Effect, Layer } from "effect"
import { AwsConfig, Ec2, RecoveryPoints, isEmulated, type Backup, type DynamoDb, type Rds } from "@backup-actions/aws"
import { deleteImage } from "./ami-image"
import { parseAmiArn } from "./arns"

/**
 * The emulator has no AWS Backup recovery points: there the shared layer deletes the resource
 * behind one (an EBS snapshot, a DB snapshot, a DynamoDB backup), and an AMI is deregistered
 * with its snapshots here, which exercises the same decision path. Against AWS, Backup's
 * DeleteRecoveryPoint (the shared layer) is used for every kind.
 */
export const viaEmulatedSources = Layer.effect(
  RecoveryPoints,
  Effect.gen(function* () {
    const shared = yield* RecoveryPoints
    const ec2 = yield* Ec2
    return {
      delete: (ref) => {
        const ami = parseAmiArn(ref.recoveryPointArn)
        return ami === undefined ? shared.delete(ref) : deleteImage(ami.imageId).pipe(Effect.provideService(Ec2, ec2))
      }
    }
  })
).pipe(Layer.provide(RecoveryPoints.viaResources))

/** Backup's API against AWS, the resource behind the recovery point against the emulator. */
export const ExporterRecoveryPointsLive: Layer.Layer<RecoveryPoints, never, AwsConfig | Backup | DynamoDb | Ec2 | Rds> = Layer.unwrapEffect(
  Effect.map(AwsConfig, (settings): Layer.Layer<RecoveryPoints, never, Backup | DynamoDb | Ec2 | Rds> =>
    isEmulated(settings) ? viaEmulatedSources : RecoveryPoints.viaBackup
  )
)
