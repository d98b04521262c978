import { Schema } from "effect"
import { ExportAction, type ExportPlan } from "@backup-actions/config"
import type { ExportSubject } from "./outcome"

/** A subject for unit tests: the policy's action decoded as the service decodes it, so defaults apply. */
export const subjectFor = (options: {
  readonly recoveryPointArn: string
  readonly resourceType: string
  readonly action: Schema.Schema.Encoded<typeof ExportAction>
  readonly attempt?: number
  readonly creationDate?: string
}): ExportSubject => {
  const plan: ExportPlan = { rule: "test-rule", ...Schema.decodeUnknownSync(ExportAction)(options.action) }
  return {
    recoveryPointArn: options.recoveryPointArn,
    backupVaultName: "Default",
    resourceType: options.resourceType,
    resourceArn: "arn:aws:dynamodb:us-east-1:123456789012:table/orders",
    creationDate: options.creationDate,
    plan,
    attempt: options.attempt ?? 1,
    startedAt: 0
  }
}
