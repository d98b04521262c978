import { Clock, Effect, Layer, Option } from "effect"
import { AwsConfig, Backup, DynamoDb, Ec2, EventBridge, Kms, Rds, S3, Sqs, type RecoveryPoints } from "@backup-actions/aws"
import { AmiSweepDue, RecoveryPointStateChange, subscribe, subscribeTo, subscriptionSet, type EventOf } from "@backup-actions/contracts"
import { PolicySource, ROUTES, ServiceSettings, exportPlanFor } from "@backup-actions/config"
import { Publisher, requireRecoveryPoint } from "@backup-actions/consumer"
import { Ledger, runStep, type StepResult } from "@backup-actions/ledger"
import { exportAmiDirect } from "./ami-direct"
import { exportAmiToStore } from "./ami-store"
import { leftToSweep, listOwnImages, selectForSweep } from "./ami-sweep"
import { parseAmiArn, partitionOf } from "./arns"
import { exportDynamoDbAsParquet } from "./dynamodb-parquet"
import { exportDynamoDbNative } from "./dynamodb-native"
import { NotExportable, describeExportFailure, type ExportFailure } from "./errors"
import { exportAction, failedExport, kindOf, publishExport, type ExportDetail, type ExportKind, type ExportSubject } from "./outcome"
import { exportRdsSnapshot } from "./rds-export"
import { ExporterRecoveryPointsLive } from "./recovery-points"

/** What the exports need from the service's layer. */
type ExportContext = DynamoDb | S3 | Rds | Kms | Ec2 | ServiceSettings | RecoveryPoints

/** The export that a kind of recovery point gets in the policy's mode. */
const runExport = (subject: ExportSubject, kind: ExportKind): Effect.Effect<StepResult<ExportDetail>, ExportFailure, ExportContext> => {
  const mode = subject.plan.mode
  if (kind !== "ami" && mode === "native" && subject.plan.deleteSourceAfterVerify) {
    return Effect.fail(
      new NotExportable({ reason: `rule "${subject.plan.rule}" asks to delete the source after a native ${kind} export, which the exporter never verifies; nothing was exported` })
    )
  }
  if (kind === "ami" && mode === "native") return exportAmiToStore(subject)
  if (kind === "ami" && mode === "direct") return exportAmiDirect(subject)
  if (kind === "dynamodb" && mode === "parquet") return exportDynamoDbAsParquet(subject)
  if (kind === "dynamodb" && mode === "native") return exportDynamoDbNative(subject)
  if ((kind === "rds" || kind === "aurora") && mode === "native") return exportRdsSnapshot(subject, kind)
  return Effect.fail(new NotExportable({ reason: `rule "${subject.plan.rule}" asks for a ${mode} export, which ${subject.resourceType} recovery points do not have here` }))
}

/** One recovery point and its plan, before the ledger step numbers the attempt. */
type ExportRequest = Omit<ExportSubject, "attempt" | "startedAt">

/**
 * Exports a recovery point under its ledger step and announces the outcome. The event path
 * and the AMI sweep both come here with the same key, so neither exports what the other did.
 */
const exportUnderStep = (request: ExportRequest, kind: ExportKind) =>
  Effect.gen(function* () {
    const { recoveryPointArn, plan } = request
    const startedAt = yield* Clock.currentTimeMillis
    const result = yield* runStep({ recoveryPointArn, action: exportAction(plan.mode) }, { lease: "10 minutes" }, (record) => {
      const subject: ExportSubject = { ...request, attempt: record.attempts, startedAt }
      const fail = (error: ExportFailure) => failedExport(subject, kind, describeExportFailure(error))
      return runExport(subject, kind).pipe(
        Effect.catchTags({
          AwsError: fail,
          NotExportable: fail,
          BackupUnavailable: fail,
          TableNotActive: fail,
          SpoolFailed: fail,
          ParquetWriteFailed: fail,
          NativeExportFailed: fail,
          ExportStillRunning: fail,
          ImageUnavailable: fail,
          StorageClassRefused: fail
        })
      )
    })
    if (Option.isSome(result)) {
      const outcome = result.value
      yield* outcome._tag === "Succeeded"
        ? Effect.logInfo(`exported ${recoveryPointArn} (${plan.mode})`)
        : Effect.logError(`export of ${recoveryPointArn} failed: ${outcome.reason}`)
      yield* publishExport(outcome)
    }
  })

/** The ledger key of an EC2 recovery point: its AMI ARN in the one form the sweep builds too. */
const ledgerArnOf = (recoveryPointArn: string, kind: ExportKind): string => (kind === "ami" ? (parseAmiArn(recoveryPointArn)?.arn ?? recoveryPointArn) : recoveryPointArn)

/**
 * A completed recovery point whose policy asks for an export: export it under a ledger step and
 * announce the outcome. An event that names no recovery point is rejected to the DLQ: there is
 * nothing to export and no ledger key to record a failure under.
 */
export const onRecoveryPoint = (event: EventOf<typeof RecoveryPointStateChange>) =>
  Effect.gen(function* () {
    const policy = yield* PolicySource
    const { resourceType, resourceArn, backupVaultName, creationDate } = event.detail
    const plan = exportPlanFor(policy, { resourceType, resourceArn, vaultName: backupVaultName })
    const kind = kindOf(resourceType)
    if (plan === undefined || kind === undefined) return
    const recoveryPointArn = ledgerArnOf(yield* requireRecoveryPoint(event), kind)
    if (kind === "ami" && leftToSweep(plan, creationDate, yield* Clock.currentTimeMillis)) {
      yield* Effect.logInfo(`${recoveryPointArn} is younger than ${plan.olderThanDays} days; the AMI sweep exports it when it is old enough`)
      return
    }
    yield* exportUnderStep({ recoveryPointArn, backupVaultName, resourceType, resourceArn, creationDate, plan }, kind)
  }).pipe(Effect.annotateLogs({ service: "exporter" }))

/**
 * The daily AMI sweep: the account's AMIs that the policy selects and that are old enough,
 * each through the same ledger step as its recovery-point event. Two at a time: a store-image
 * task runs for a long while, and EC2 limits how many run at once.
 */
export const onAmiSweepDue = (_event: EventOf<typeof AmiSweepDue>) =>
  Effect.gen(function* () {
    const policy = yield* PolicySource
    const aws = yield* AwsConfig
    const nowMs = yield* Clock.currentTimeMillis
    const images = yield* listOwnImages
    const selected = selectForSweep(policy, images, { partition: partitionOf(aws.region), region: aws.region, account: undefined, nowMs })
    yield* Effect.logInfo(`AMI sweep: ${selected.length} of ${images.length} AMI(s) selected`)
    yield* Effect.forEach(
      selected,
      (image) =>
        exportUnderStep(
          { recoveryPointArn: image.recoveryPointArn, backupVaultName: "", resourceType: "EC2", resourceArn: image.resourceArn, creationDate: image.creationDate, plan: image.plan },
          "ami"
        ).pipe(
          // One AMI that cannot be claimed or recorded now does not stop the others; the next sweep tries it again.
          Effect.catchAll((error) => Effect.logWarning(`AMI sweep: ${image.imageId} left for the next sweep: ${error._tag}`))
        ),
      { concurrency: 2, discard: true }
    )
  }).pipe(Effect.annotateLogs({ service: "exporter" }))

export const subscriptions = subscriptionSet(subscribeTo(ROUTES.exporter.recoveryPoints, onRecoveryPoint), subscribe(AmiSweepDue, onAmiSweepDue))

/** Everything the exporter's handlers need, from the environment. */
export const ExporterLive = Layer.mergeAll(Ledger.Live, Publisher.Live, ExporterRecoveryPointsLive).pipe(
  // The clients this service calls and no others: a smaller bundle, a faster cold start.
  Layer.provideMerge(Layer.mergeAll(Backup.Live, S3.Live, DynamoDb.Live, Ec2.Live, Kms.Live, Rds.Live, Sqs.Live, EventBridge.Live, ServiceSettings.fromEnv, PolicySource.fromEnv)),
  Layer.provideMerge(AwsConfig.fromEnv)
)
