import { Config, Context, Effect, Layer, Option } from "effect"

/** What a running service needs to know about the shared resources. */
export interface ServiceSettingsShape {
  readonly busName: string
  readonly artifactBucket: string
  readonly ledgerTable: string
  readonly queueUrl: string
  readonly deadLetterQueueUrl: string
  /** Where temporary files (materialized images, mount points) go. */
  readonly workDir: string
  /** How long a claim on a step lasts without renewal; a dead worker's step is taken over after it. */
  readonly stepLeaseSeconds: number
  /** The SNS topic that failures and digests are announced on; none means no notifications. */
  readonly notificationTopicArn: Option.Option<string>
}

export class ServiceSettings extends Context.Tag("backup-actions/ServiceSettings")<ServiceSettings, ServiceSettingsShape>() {
  /** BACKUP_ACTIONS_BUS, _BUCKET, _LEDGER_TABLE, _QUEUE_URL, _DLQ_URL, _WORK_DIR, _STEP_LEASE_SECONDS, _TOPIC_ARN. */
  static readonly fromEnv = Layer.effect(
    ServiceSettings,
    Effect.all({
      busName: Config.string("BACKUP_ACTIONS_BUS"),
      artifactBucket: Config.string("BACKUP_ACTIONS_BUCKET"),
      ledgerTable: Config.string("BACKUP_ACTIONS_LEDGER_TABLE"),
      queueUrl: Config.string("BACKUP_ACTIONS_QUEUE_URL"),
      deadLetterQueueUrl: Config.string("BACKUP_ACTIONS_DLQ_URL"),
      workDir: Config.string("BACKUP_ACTIONS_WORK_DIR").pipe(Config.withDefault("/tmp/backup-actions")),
      stepLeaseSeconds: Config.integer("BACKUP_ACTIONS_STEP_LEASE_SECONDS").pipe(Config.withDefault(120)),
      notificationTopicArn: Config.option(Config.string("BACKUP_ACTIONS_TOPIC_ARN"))
    })
  )

  static readonly layer = (
    settings: Omit<ServiceSettingsShape, "stepLeaseSeconds" | "notificationTopicArn"> &
      Partial<Pick<ServiceSettingsShape, "stepLeaseSeconds" | "notificationTopicArn">>
  ) => Layer.succeed(ServiceSettings, { stepLeaseSeconds: 120, notificationTopicArn: Option.none(), ...settings })
}
