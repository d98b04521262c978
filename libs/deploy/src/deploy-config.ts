import { readFileSync } from "node:fs"
import { Either, ParseResult, Schema } from "effect"
import { Policy } from "@backup-actions/config"

const Days = Schema.Number.pipe(Schema.int(), Schema.positive())

/**
 * Lifecycle of archives in the artifact bucket: days after creation. The transitions move only
 * archives (tagged for cold storage at upload), never their manifests; expiry takes both.
 */
const Lifecycle = Schema.Struct({
  glacierAfterDays: Schema.optional(Days),
  deepArchiveAfterDays: Schema.optional(Days),
  expireAfterDays: Schema.optional(Days)
})

const BackupPlanConfig = Schema.Struct({
  name: Schema.String.pipe(Schema.pattern(/^[A-Za-z0-9_-]{1,50}$/)),
  /** An EventBridge cron expression, e.g. cron(0 3 * * ? *). */
  schedule: Schema.String.pipe(Schema.pattern(/^cron\(.+\)$/)),
  retentionDays: Days,
  coldStorageAfterDays: Schema.optional(Days),
  /** Resources carrying all these tags are backed up by the plan. */
  selectionTags: Schema.Record({ key: Schema.String, value: Schema.String })
})

const DestinationConfig = Schema.Struct({
  account: Schema.String.pipe(Schema.pattern(/^\d{12}$/)),
  region: Schema.String,
  /** The role in the destination account that the sharer assumes (with the external id). */
  roleArn: Schema.String.pipe(Schema.pattern(/^arn:aws[a-z-]*:iam::\d{12}:role\/.+$/))
})

/** Everything a deployment needs, from one file, checked before anything is synthesized. */
export const DeployConfig = Schema.Struct({
  account: Schema.String.pipe(Schema.pattern(/^\d{12}$/, { message: () => "account must be a 12-digit AWS account id" })),
  region: Schema.String.pipe(Schema.pattern(/^[a-z]{2}(-[a-z]+)+-\d$/, { message: () => "region must look like eu-west-1" })),
  prefix: Schema.optionalWith(Schema.String.pipe(Schema.pattern(/^[a-z][a-z0-9-]{2,30}$/)), { default: () => "backup-actions" }),
  /** Tags on every resource deployed. */
  tags: Schema.optionalWith(Schema.Record({ key: Schema.String, value: Schema.String }), { default: () => ({}) }),
  bus: Schema.optionalWith(Schema.Struct({ archiveRetentionDays: Schema.optionalWith(Days, { default: () => 365 }) }), {
    default: () => ({ archiveRetentionDays: 365 })
  }),
  bucket: Schema.optionalWith(
    Schema.Struct({
      versioned: Schema.optionalWith(Schema.Boolean, { default: () => true }),
      objectLock: Schema.optional(Schema.Struct({ mode: Schema.Literal("GOVERNANCE", "COMPLIANCE"), days: Days })),
      accessLogs: Schema.optionalWith(Schema.Boolean, { default: () => true }),
      lifecycle: Schema.optionalWith(Lifecycle, { default: () => ({}) })
    }),
    { default: () => ({ versioned: true, accessLogs: true, lifecycle: {} }) }
  ),
  vault: Schema.optional(
    Schema.Struct({
      name: Schema.String.pipe(Schema.pattern(/^[A-Za-z0-9_.-]{2,50}$/)),
      lock: Schema.optional(
        Schema.Struct({
          mode: Schema.Literal("governance", "compliance"),
          minRetentionDays: Days,
          maxRetentionDays: Schema.optional(Days),
          /** Compliance mode only: days before the lock becomes immutable (at least 3). */
          changeableForDays: Schema.optional(Days)
        })
      ),
      plans: Schema.optionalWith(Schema.Array(BackupPlanConfig), { default: () => [] })
    })
  ),
  destinations: Schema.optionalWith(Schema.Array(DestinationConfig), { default: () => [] }),
  streamer: Schema.optionalWith(
    Schema.Struct({
      /** ec2: can attach and mount volumes (both modes); fargate: direct mode only. */
      compute: Schema.optionalWith(Schema.Literal("ec2", "fargate"), { default: () => "ec2" as const }),
      instanceType: Schema.optionalWith(Schema.String, { default: () => "m6i.large" }),
      spot: Schema.optionalWith(Schema.Boolean, { default: () => true }),
      maxInstances: Schema.optionalWith(Schema.Number.pipe(Schema.int(), Schema.between(1, 100)), { default: () => 4 }),
      /** Restored volumes are made here and the streamer's instances run here: a volume attaches only in its own zone. */
      availabilityZoneSuffix: Schema.optionalWith(Schema.String.pipe(Schema.pattern(/^[a-z]$/)), { default: () => "a" })
    }),
    { default: () => ({ compute: "ec2" as const, instanceType: "m6i.large", spot: true, maxInstances: 4, availabilityZoneSuffix: "a" }) }
  ),
  /** What the services do with each recovery point (see the README's policy section). */
  policy: Schema.optional(Policy),
  alarmEmail: Schema.optional(Schema.String.pipe(Schema.pattern(/^[^@\s]+@[^@\s]+$/)))
}).pipe(
  Schema.filter((config) => {
    const lock = config.vault?.lock
    if (lock === undefined) return true
    if (lock.mode === "compliance" && (lock.changeableForDays === undefined || lock.changeableForDays < 3)) {
      return "vault.lock: compliance mode needs changeableForDays of at least 3 (the grace period before the lock is immutable)"
    }
    if (lock.mode === "governance" && lock.changeableForDays !== undefined) return "vault.lock: changeableForDays applies to compliance mode only"
    if (lock.maxRetentionDays !== undefined && lock.maxRetentionDays < lock.minRetentionDays) return "vault.lock: maxRetentionDays is below minRetentionDays"
    return true
  }),
  Schema.filter((config) => {
    const lifecycle = config.bucket.lifecycle
    if (lifecycle.glacierAfterDays !== undefined && lifecycle.deepArchiveAfterDays !== undefined && lifecycle.deepArchiveAfterDays <= lifecycle.glacierAfterDays) {
      return "bucket.lifecycle: deepArchiveAfterDays must come after glacierAfterDays"
    }
    const last = Math.max(lifecycle.glacierAfterDays ?? 0, lifecycle.deepArchiveAfterDays ?? 0)
    if (lifecycle.expireAfterDays !== undefined && lifecycle.expireAfterDays <= last) return "bucket.lifecycle: expireAfterDays must come after the transitions"
    return true
  })
)
export type DeployConfig = typeof DeployConfig.Type

/** The configuration file is missing, not JSON, or does not hold what a deployment needs. */
export class InvalidDeployConfig extends Error {
  constructor(
    readonly origin: string,
    readonly reason: string
  ) {
    super(`${origin}: ${reason}`)
    this.name = "InvalidDeployConfig"
  }
}

const decode = Schema.decodeUnknownEither(DeployConfig, { errors: "all", onExcessProperty: "error" })

/** Parses a deployment configuration, with a message that names each offending field. */
export const parseDeployConfig = (text: string, origin: string): Either.Either<DeployConfig, InvalidDeployConfig> =>
  Either.flatMap(
    Either.try({ try: (): unknown => JSON.parse(text), catch: (error) => new InvalidDeployConfig(origin, `not JSON: ${String(error)}`) }),
    (json) =>
      Either.mapLeft(decode(json), (error) => {
        const issues = ParseResult.ArrayFormatter.formatErrorSync(error).map((issue) =>
          issue.path.length === 0 ? issue.message : `${issue.path.join(".")}: ${issue.message}`
        )
        return new InvalidDeployConfig(origin, issues.join("; "))
      })
  )

/**
 * Reads the deployment configuration from BACKUP_ACTIONS_DEPLOY_CONFIG, else the given default
 * file; throws (CDK apps are synchronous programs) with a message that says what is wrong.
 */
export const loadDeployConfig = (defaultFile: string): DeployConfig => {
  const file = process.env["BACKUP_ACTIONS_DEPLOY_CONFIG"] ?? defaultFile
  const text = Either.try({ try: () => readFileSync(file, "utf8"), catch: (error) => new InvalidDeployConfig(file, `cannot read: ${String(error)}`) })
  return Either.getOrThrow(Either.flatMap(text, (content) => parseDeployConfig(content, file)))
}
