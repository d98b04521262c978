import { Config, Context, Effect, Layer } from "effect"

/** What a running service needs to know about the shared resources. */
export interface ServiceSettingsShape {
  readonly busName: string
  readonly artifactBucket: string
  readonly ledgerTable: string
  readonly queueUrl: string
  readonly deadLetterQueueUrl: string
  /** Where temporary files (materialized images, mount points) go. */
  readonly workDir: string
}

export class ServiceSettings extends Context.Tag("backup-actions/ServiceSettings")<ServiceSettings, ServiceSettingsShape>() {
  /** BACKUP_ACTIONS_BUS, _BUCKET, _LEDGER_TABLE, _QUEUE_URL, _DLQ_URL, _WORK_DIR. */
  static readonly fromEnv = Layer.effect(
    ServiceSettings,
    Effect.all({
      busName: Config.string("BACKUP_ACTIONS_BUS"),
      artifactBucket: Config.string("BACKUP_ACTIONS_BUCKET"),
      ledgerTable: Config.string("BACKUP_ACTIONS_LEDGER_TABLE"),
      queueUrl: Config.string("BACKUP_ACTIONS_QUEUE_URL"),
      deadLetterQueueUrl: Config.string("BACKUP_ACTIONS_DLQ_URL"),
      workDir: Config.string("BACKUP_ACTIONS_WORK_DIR").pipe(Config.withDefault("/tmp/backup-actions"))
    })
  )

  static readonly layer = (settings: ServiceSettingsShape) => Layer.succeed(ServiceSettings, settings)
}
