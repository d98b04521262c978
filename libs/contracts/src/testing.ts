import type { ArchivePlan } from "./common"
import { RecoveryPointStateChange } from "./aws-backup"
import type { EventOf } from "./contract"
import { RestoreCompleted } from "./restore-completed"

/** The envelope fields every test event shares, in the given account and region. */
export const testEnvelope = (account: string, region: string) => ({ version: "0", account, time: "2026-08-01T00:00:00Z", region }) as const

/** A COMPLETED recovery point event as AWS Backup sends it, naming its recovery point only when given one. */
export const recoveryPointCompleted = (
  envelope: ReturnType<typeof testEnvelope>,
  id: string,
  resource: { readonly resourceType: string; readonly resourceArn: string; readonly vaultName: string },
  recoveryPointArn?: string
): EventOf<typeof RecoveryPointStateChange> => ({
  ...envelope,
  id,
  source: RecoveryPointStateChange.source,
  "detail-type": RecoveryPointStateChange.detailType,
  resources: recoveryPointArn === undefined ? [] : [recoveryPointArn],
  detail: { status: "COMPLETED", resourceType: resource.resourceType, resourceArn: resource.resourceArn, backupVaultName: resource.vaultName }
})

/** The restorer's hand-off of a direct-mode plan: a Restore Completed for which nothing was restored. */
export const directPlanHandOff = (
  envelope: ReturnType<typeof testEnvelope>,
  id: string,
  recoveryPointArn: string,
  snapshotId: string,
  plan: ArchivePlan
): EventOf<typeof RestoreCompleted> => ({
  ...envelope,
  id,
  source: RestoreCompleted.source,
  "detail-type": RestoreCompleted.detailType,
  resources: [recoveryPointArn],
  detail: {
    schemaVersion: 1,
    correlationId: recoveryPointArn,
    idempotencyKey: `${recoveryPointArn}#restore:direct`,
    status: "not-needed",
    resourceType: "EBS",
    backupVaultName: "Default",
    snapshotId,
    plan
  }
})
