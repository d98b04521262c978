import { Config, Context, Effect, Layer, Option } from "effect"

/** Claims a step may have by default before the runtime gives it up. */
export const DEFAULT_STEP_MAX_ATTEMPTS = 5

/**
 * Receives after which SQS itself moves a message to the service's DLQ (the redrive policy),
 * here and in every deployment. The ledger's bounded attempts decide first, with the reason: a
 * worker that dies can leave a long poll open that still takes (and hides) the message, so
 * receives run ahead of attempts, and the redrive stays a backstop well above the attempts.
 */
export const MAX_RECEIVE_COUNT = 4 * DEFAULT_STEP_MAX_ATTEMPTS

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
  /** Claims a step may have before the runtime gives it up (it kept failing, or kept killing its worker). */
  readonly stepMaxAttempts: number
  /** The SNS topic that failures and digests are announced on; none means no notifications. */
  readonly notificationTopicArn: Option.Option<string>
}

export class ServiceSettings extends Context.Tag("backup-actions/ServiceSettings")<ServiceSettings, ServiceSettingsShape>() {
  /** BACKUP_ACTIONS_BUS, _BUCKET, _LEDGER_TABLE, _QUEUE_URL, _DLQ_URL, _WORK_DIR, _STEP_LEASE_SECONDS, _STEP_MAX_ATTEMPTS, _TOPIC_ARN. */
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
      stepMaxAttempts: Config.integer("BACKUP_ACTIONS_STEP_MAX_ATTEMPTS").pipe(
        Config.validate({ message: "must be at least 1", validation: (attempts) => attempts >= 1 }),
        Config.withDefault(DEFAULT_STEP_MAX_ATTEMPTS)
      ),
      notificationTopicArn: Config.option(Config.string("BACKUP_ACTIONS_TOPIC_ARN"))
    })
  )

  static readonly layer = (
    settings: Omit<ServiceSettingsShape, "stepLeaseSeconds" | "stepMaxAttempts" | "notificationTopicArn"> &
      Partial<Pick<ServiceSettingsShape, "stepLeaseSeconds" | "stepMaxAttempts" | "notificationTopicArn">>
  ) => Layer.succeed(ServiceSettings, { stepLeaseSeconds: 120, stepMaxAttempts: DEFAULT_STEP_MAX_ATTEMPTS, notificationTopicArn: Option.none(), ...settings })
}
