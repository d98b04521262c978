import { ListRecoveryPointsByBackupVaultCommand, type RecoveryPointByBackupVault } from "@aws-sdk/client-backup"
import { Effect } from "effect"
import { awsCall } from "./call"
import { Backup } from "./clients/backup"

/** Which of a vault's recovery points to list: those of one resource type (AWS Backup's name, e.g. EC2), those created after a time. */
export interface VaultRecoveryPointFilter {
  readonly resourceType?: string
  readonly createdAfter?: Date
}

/** The recovery points AWS Backup keeps in a vault, as it lists them, every page. */
export const listVaultRecoveryPoints = (vault: string, filter: VaultRecoveryPointFilter = {}) =>
  Effect.gen(function* () {
    const backup = yield* Backup
    const points: Array<RecoveryPointByBackupVault> = []
    let nextToken: string | undefined
    do {
      const page = yield* awsCall("backup:ListRecoveryPointsByBackupVault", (abortSignal) =>
        backup.send(
          new ListRecoveryPointsByBackupVaultCommand({
            BackupVaultName: vault,
            ...(filter.resourceType === undefined ? {} : { ByResourceType: filter.resourceType }),
            ...(filter.createdAfter === undefined ? {} : { ByCreatedAfter: filter.createdAfter }),
            MaxResults: 1000,
            NextToken: nextToken
          }),
          { abortSignal }
        )
      )
      points.push(...(page.RecoveryPoints ?? []))
      nextToken = page.NextToken === "" ? undefined : page.NextToken
    } while (nextToken !== undefined)
    return points
  })
