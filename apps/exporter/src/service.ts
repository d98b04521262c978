import { Clock, Effect, Layer, Option } from "effect"
import { AllClientsLive, AwsConfig, type DynamoDb, type Kms, type Rds, type RecoveryPoints, type S3 } from "@backup-actions/aws"
import { RecoveryPointStateChange, recoveryPointArnOf, subscribeTo, subscriptionSet, type EventOf } from "@backup-actions/contracts"
import { PolicySource, ROUTES, ServiceSettings, exportPlanFor } from "@backup-actions/config"
import { Publisher } from "@backup-actions/consumer"
import { Ledger, runStep, type StepResult } from "@backup-actions/ledger"
import { exportDynamoDbAsParquet } from "./dynamodb-parquet"
import { exportDynamoDbNative } from "./dynamodb-native"
import { NotExportable, describeExportFailure, type ExportFailure } from "./errors"
import { exportAction, failedExport, kindOf, publishExport, type ExportDetail, type ExportKind, type ExportSubject } from "./outcome"
import { exportRdsSnapshot } from "./rds-export"
import { ExporterRecoveryPointsLive } from "./recovery-points"

/** What the exports need from the service's layer. */
type ExportContext = DynamoDb | S3 | Rds | Kms | ServiceSettings | RecoveryPoints

/** The export that a kind of recovery point gets in the policy's mode. */
const runExport = (subject: ExportSubject, kind: ExportKind): Effect.Effect<StepResult<ExportDetail>, ExportFailure, ExportContext> => {
  const mode = subject.plan.mode
  if (kind === "dynamodb" && mode === "parquet") return exportDynamoDbAsParquet(subject)
  if (kind === "dynamodb" && mode === "native") return exportDynamoDbNative(subject)
  if ((kind === "rds" || kind === "aurora") && mode === "native") return exportRdsSnapshot(subject, kind)
  return Effect.fail(new NotExportable({ reason: `rule "${subject.plan.rule}" asks for a ${mode} export, which ${subject.resourceType} recovery points do not have here` }))
}

/** A completed recovery point whose policy asks for an export: export it under a ledger step and announce the outcome. */
export const onRecoveryPoint = (event: EventOf<typeof RecoveryPointStateChange>) =>
  Effect.gen(function* () {
    const policy = yield* PolicySource
    const recoveryPointArn = recoveryPointArnOf(event) ?? ""
    const { resourceType, resourceArn, backupVaultName } = event.detail
    const plan = exportPlanFor(policy, { resourceType, resourceArn, vaultName: backupVaultName })
    const kind = kindOf(resourceType)
    if (plan === undefined || kind === undefined) return
    const startedAt = yield* Clock.currentTimeMillis
    const result = yield* runStep({ recoveryPointArn, action: exportAction(plan.mode) }, { lease: "10 minutes" }, (record) => {
      const subject: ExportSubject = {
        recoveryPointArn,
        backupVaultName,
        resourceType,
        resourceArn,
        creationDate: event.detail.creationDate,
        plan,
        attempt: record.attempts,
        startedAt
      }
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
          ExportStillRunning: fail
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
  }).pipe(Effect.annotateLogs({ service: "exporter" }))

export const subscriptions = subscriptionSet(subscribeTo(ROUTES.exporter.recoveryPoints, onRecoveryPoint))

/** Everything the exporter's handlers need, from the environment. */
export const ExporterLive = Layer.mergeAll(Ledger.Live, Publisher.Live, ExporterRecoveryPointsLive).pipe(
  Layer.provideMerge(Layer.mergeAll(AllClientsLive, ServiceSettings.fromEnv, PolicySource.fromEnv)),
  Layer.provideMerge(AwsConfig.fromEnv)
)
