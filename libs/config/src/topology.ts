/**
 * The names of everything the services share, derived from one prefix so that local
 * provisioning, the CDK stacks and the services agree without passing names around.
 */
/**
 * The ledger table's sparse index of finished steps whose outcome event is not published yet
 * (the outbox): partition key the event's detail-type, sort key when the step finished. The
 * ledger writes the attributes; the core stack and the local provisioning declare the index.
 */
export const LEDGER_OUTBOX_INDEX = { name: "outbox", partitionKey: "outbox", sortKey: "finishedAt" } as const

/**
 * The SSM path under which the restorer keeps the master password of each DB instance it
 * restores for a dump, one SecureString per instance. The restorer's names, the streamer's
 * read, both services' IAM grants and the local stand-ins for RDS all derive from it. It is
 * not derived from the prefix: the running services are never told the prefix.
 */
export const RESTORED_PASSWORD_PATH = "/backup-actions/restored"

/** The parameter holding a restored instance's master password. */
export const restoredPasswordParameter = (instanceId: string): string => `${RESTORED_PASSWORD_PATH}/${instanceId}/password`

const RESTORED_PASSWORD_PARAMETER = new RegExp(`^${RESTORED_PASSWORD_PATH}/([^/]+)/password$`)

/** The instance id in a parameter name made by `restoredPasswordParameter`, if it is one. */
export const instanceIdOfRestoredPassword = (name: string): string | undefined => RESTORED_PASSWORD_PARAMETER.exec(name)?.[1]

/** The ARN of every restored instance's password parameter, for IAM (`partition` may be CDK's `<AWS::Partition>` token). */
export const restoredPasswordsArn = (partition: string, region: string, account: string): string =>
  `arn:${partition}:ssm:${region}:${account}:parameter${RESTORED_PASSWORD_PATH}/*`

export const SERVICES = ["restorer", "streamer", "exporter", "sharer", "reporter"] as const
export type ServiceName = (typeof SERVICES)[number]

export interface Topology {
  readonly prefix: string
  readonly busName: string
  readonly forwardRuleName: string
  readonly archiveName: string
  readonly ledgerTable: string
  readonly artifactBucket: string
  /** The SNS topic for failure notifications and digests. */
  readonly notificationTopic: string
  readonly queueName: (service: ServiceName) => string
  readonly deadLetterQueueName: (service: ServiceName) => string
  readonly ruleName: (service: ServiceName, detailType: string) => string
}

const slug = (text: string): string =>
  text
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-|-$/g, "")

export const topology = (options: { readonly prefix?: string; readonly account: string; readonly region: string }): Topology => {
  const prefix = options.prefix ?? "backup-actions"
  return {
    prefix,
    busName: `${prefix}-bus`,
    forwardRuleName: `${prefix}-forward-aws-backup`,
    archiveName: `${prefix}-archive`,
    ledgerTable: `${prefix}-ledger`,
    artifactBucket: `${prefix}-artifacts-${options.account}-${options.region}`,
    notificationTopic: `${prefix}-notifications`,
    queueName: (service) => `${prefix}-${service}`,
    deadLetterQueueName: (service) => `${prefix}-${service}-dlq`,
    // Rule names are at most 64 characters.
    ruleName: (service, detailType) => `${prefix}-${service}-${slug(detailType)}`.slice(0, 64)
  }
}
