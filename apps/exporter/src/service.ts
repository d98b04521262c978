import { Clock, Effect, Layer, Option } from "effect"
import {
  AwsConfig,
  Backup,
  DynamoDb,
  Ec2,
  EventBridge,
  Kms,
  ProtectedResources,
  Rds,
  S3,
  Sqs,
  recoveryPointFacts,
  recoveryPointSubject,
  RecoveryPoints
} from "@backup-actions/aws"
import { AmiSweepDue, ExportCompleted, RecoveryPointStateChange, subscribe, subscribeTo, subscriptionSet, type EventOf } from "@backup-actions/contracts"
import { PolicySource, ROUTES, ServiceSettings, exportPlanFor, mayApply, needsTags } from "@backup-actions/config"
import { Publisher, requireRecoveryPoint, runStep } from "@backup-actions/consumer"
import { Ledger, type StepResult } from "@backup-actions/ledger"
import { exportAmiDirect } from "./ami-direct"
import { exportAmiToStore } from "./ami-store"
import { amiVaultsNamedByRules, leftToSweep, listOwnImages, selectForSweep, vaultsOfAmis } from "./ami-sweep"
import { parseAmiArn, partitionOf } from "./arns"
import { exportDynamoDbAsParquet } from "./dynamodb-parquet"
import { exportDynamoDbNative } from "./dynamodb-native"
import { NotExportable, describeExportFailure, type ExportFailure } from "./errors"
import { baseDetail, exportAction, failedExport, kindOf, type ExportDetail, type ExportKind, type ExportSubject } from "./outcome"
import { deleteExportedSource } from "./source-deletion"
import { exportRdsSnapshot } from "./rds-export"

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
    const spec = {
      step: { recoveryPointArn, action: exportAction(plan.mode) },
      contract: ExportCompleted,
      resources: [recoveryPointArn],
      gaveUp: (reason: string): ExportDetail => ({ ...baseDetail(request, kind), status: "failed", sourceDeleted: false, reason, durationMs: 0 }),
      afterSuccess: (outcome: ExportDetail) => deleteExportedSource(request, kind, outcome)
    }
    const result = yield* runStep(spec, ({ claim }) => {
      const subject: ExportSubject = { ...request, attempt: claim.attempt, startedAt }
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
    }
  })

/** The ledger key of an EC2 recovery point: its AMI ARN in the one form the sweep builds too. */
const ledgerArnOf = (recoveryPointArn: string, kind: ExportKind): string => (kind === "ami" ? (parseAmiArn(recoveryPointArn)?.arn ?? recoveryPointArn) : recoveryPointArn)

/**
 * A completed recovery point whose policy asks for an export (by its type, vault, resource and,
 * when a rule asks, the protected resource's tags): export it under a ledger step and announce
 * the outcome. An event that names no recovery point is rejected to the DLQ when a rule may ask
 * for an export: there is nothing to export and no ledger key to record a failure under.
 */
export const onRecoveryPoint = (event: EventOf<typeof RecoveryPointStateChange>) =>
  Effect.gen(function* () {
    const policy = yield* PolicySource
    const facts = recoveryPointFacts(event)
    const kind = kindOf(facts.resourceType)
    if (kind === undefined || !mayApply(policy, "export", facts)) return
    const point = yield* recoveryPointSubject(event, yield* requireRecoveryPoint(event), { lookUpTags: needsTags(policy, "export", facts) })
    const plan = exportPlanFor(policy, point)
    if (plan === undefined) return
    const { resourceType, resourceArn, vaultName: backupVaultName } = point
    const creationDate = event.detail.creationDate
    const recoveryPointArn = ledgerArnOf(point.recoveryPointArn, kind)
    if (kind === "ami" && leftToSweep(plan, creationDate, yield* Clock.currentTimeMillis)) {
      yield* Effect.logInfo(`${recoveryPointArn} is younger than ${plan.olderThanDays} days; the AMI sweep exports it when it is old enough`)
      return
    }
    yield* exportUnderStep({ recoveryPointArn, backupVaultName, resourceType, resourceArn, creationDate, plan }, kind)
  }).pipe(Effect.annotateLogs({ service: "exporter" }))

/**
 * The daily AMI sweep: the account's AMIs that the policy selects and that are old enough,
 * each through the same ledger step as its recovery-point event. When export rules are limited
 * to vaults, AWS Backup says which of those vaults holds each AMI (and the export then knows the
 * vault, so that a deletion goes through AWS Backup); without its answer, those rules select
 * nothing. Two at a time: a store-image task runs for a long while, and EC2 limits how many run
 * at once.
 */
export const onAmiSweepDue = (_event: EventOf<typeof AmiSweepDue>) =>
  Effect.gen(function* () {
    const policy = yield* PolicySource
    const aws = yield* AwsConfig
    const nowMs = yield* Clock.currentTimeMillis
    const images = yield* listOwnImages
    const vaults = amiVaultsNamedByRules(policy)
    const vaultOf = vaults.length === 0 || images.length === 0 ? Option.none() : yield* vaultsOfAmis(vaults)
    const sweep = selectForSweep(policy, images, { partition: partitionOf(aws.region), region: aws.region, account: undefined, nowMs, vaultOf })
    const selected = sweep.selected
    yield* Effect.logInfo(
      `AMI sweep: ${selected.length} of ${images.length} AMI(s) selected` +
        (sweep.undecided.length === 0 ? "" : `; ${sweep.undecided.length} left out because their rule is limited to vaults and AWS Backup did not say which vault holds them`)
    )
    yield* Effect.forEach(
      selected,
      (image) =>
        exportUnderStep(
          {
            recoveryPointArn: image.recoveryPointArn,
            backupVaultName: image.backupVaultName,
            resourceType: "EC2",
            resourceArn: image.resourceArn,
            creationDate: image.creationDate,
            plan: image.plan
          },
          "ami"
        ).pipe(
          // One AMI that cannot be claimed or recorded now does not stop the others; the next sweep tries it again.
          Effect.catchAll((error) => Effect.logWarning(`AMI sweep: ${image.imageId} left for the next sweep: ${error._tag}`))
        ),
      { concurrency: 2, discard: true }
    )
  }).pipe(Effect.annotateLogs({ service: "exporter" }))

export const subscriptions = subscriptionSet(subscribeTo(ROUTES.exporter.recoveryPoints, onRecoveryPoint), subscribe(AmiSweepDue, onAmiSweepDue))

/**
 * The exporter's own services. What differs off AWS (RecoveryPoints) is left to the assembly:
 * ExporterLive gives AWS's, another assembly its own.
 */
export const ExporterServices = Layer.mergeAll(Ledger.Live, Publisher.Live, ProtectedResources.Live)

/** The clients this service calls and no others (a smaller bundle, a faster cold start), and its settings and policy, from the environment. */
export const ExporterClients = Layer.mergeAll(Backup.Live, S3.Live, DynamoDb.Live, Ec2.Live, Kms.Live, Rds.Live, Sqs.Live, EventBridge.Live, ServiceSettings.fromEnv, PolicySource.fromEnv).pipe(
  Layer.provideMerge(AwsConfig.fromEnv)
)

/** Everything the exporter's handlers need on AWS, from the environment. */
export const ExporterLive = ExporterServices.pipe(Layer.provideMerge(RecoveryPoints.Live), Layer.provideMerge(ExporterClients))
