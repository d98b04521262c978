import { Clock, Effect } from "effect"
import { ExportCompleted, type DetailOf } from "@backup-actions/contracts"
import type { ExportPlan } from "@backup-actions/config"
import { failed, type StepResult } from "@backup-actions/ledger"

export type ExportDetail = DetailOf<typeof ExportCompleted>
export type ExportKind = ExportDetail["kind"]

/** One recovery point to export, and what the policy asked for. */
export interface ExportSubject {
  readonly recoveryPointArn: string
  readonly backupVaultName: string
  readonly resourceType: string
  readonly resourceArn: string
  /** When AWS Backup made the recovery point (the event's creationDate), when it said. */
  readonly creationDate: string | undefined
  readonly plan: ExportPlan
  /** The ledger step's attempt number: identifiers that must not collide across retries include it. */
  readonly attempt: number
  readonly startedAt: number
}

/** The kind of export a resource type gets; undefined for types the exporter has no export for. */
export const kindOf = (resourceType: string): ExportKind | undefined => {
  switch (resourceType) {
    case "DynamoDB":
      return "dynamodb"
    case "RDS":
      return "rds"
    case "Aurora":
      return "aurora"
    case "EC2":
      return "ami"
    default:
      return undefined
  }
}

/** The ledger action of an export in a mode. */
export const exportAction = (mode: ExportPlan["mode"]): string => `export:${mode}`

/** What every Export Completed says, whatever its outcome: the protected resource too, so that its newest export can be found by it. */
export const baseDetail = (subject: Pick<ExportSubject, "recoveryPointArn" | "resourceArn" | "plan">, kind: ExportKind) => ({
  schemaVersion: 1 as const,
  correlationId: subject.recoveryPointArn,
  idempotencyKey: `${subject.recoveryPointArn}#${exportAction(subject.plan.mode)}`,
  kind,
  resourceArn: subject.resourceArn,
  mode: subject.plan.mode
})

/** A failed export: the reason in the ledger and in the event; the source is never deleted. */
export const failedExport = (subject: ExportSubject, kind: ExportKind, reason: string) =>
  Effect.map(Clock.currentTimeMillis, (now): StepResult<ExportDetail> =>
    failed(reason, { ...baseDetail(subject, kind), status: "failed", sourceDeleted: false, reason, durationMs: now - subject.startedAt })
  )
