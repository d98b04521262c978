import { EC2Client } from "@aws-sdk/client-ec2"
import { KMSClient } from "@aws-sdk/client-kms"
import { RDSClient } from "@aws-sdk/client-rds"
import { AssumeRoleCommand } from "@aws-sdk/client-sts"
import { Context, Effect, Layer, Runtime, type Scope } from "effect"
import { AwsConfig, AwsError, Sts, awsCall, clientOptions } from "@backup-actions/aws"

/** A region of the sharer's own account, or of another account reached through a role. */
export interface AccountTarget {
  readonly region: string
  readonly roleArn?: string | undefined
  readonly externalId?: string | undefined
}

/** The clients the sharer uses in one account and region. */
export interface RegionClients {
  readonly region: string
  readonly ec2: EC2Client
  readonly kms: KMSClient
  readonly rds: RDSClient
}

export interface AccountAccessShape {
  /** Clients for the target, destroyed when the scope closes. */
  readonly clients: (target: AccountTarget) => Effect.Effect<RegionClients, never, Scope.Scope>
}

/** How the sharer's calls in the destination account name their caller in its CloudTrail. */
export const ASSUMED_ROLE_CALLER = "backup-actions-sharer"

/** Asks STS for the role's temporary credentials, with the external id its trust policy requires. */
export const assumeRole = (roleArn: string, externalId: string | undefined) =>
  Effect.gen(function* () {
    const sts = yield* Sts
    const result = yield* awsCall("sts:AssumeRole", (abortSignal) =>
      sts.send(
        new AssumeRoleCommand({ RoleArn: roleArn, RoleSessionName: ASSUMED_ROLE_CALLER, ExternalId: externalId, DurationSeconds: 3600 }),
        { abortSignal }
      )
    )
    const credentials = result.Credentials
    if (credentials?.AccessKeyId === undefined || credentials.SecretAccessKey === undefined) {
      return yield* new AwsError({ operation: "sts:AssumeRole", code: "MissingCredentials", message: `no credentials for ${roleArn}`, kind: "client" })
    }
    return {
      accessKeyId: credentials.AccessKeyId,
      secretAccessKey: credentials.SecretAccessKey,
      ...(credentials.SessionToken === undefined ? {} : { sessionToken: credentials.SessionToken }),
      ...(credentials.Expiration === undefined ? {} : { expiration: credentials.Expiration })
    }
  })

/**
 * Clients in any account and region. Another account's clients get their credentials from
 * STS AssumeRole through a provider: the SDK caches them and asks again shortly before they
 * expire, so a copy that takes hours keeps working.
 */
export class AccountAccess extends Context.Tag("backup-actions/sharer/AccountAccess")<AccountAccess, AccountAccessShape>() {
  static readonly Live: Layer.Layer<AccountAccess, never, AwsConfig | Sts> = Layer.effect(
    AccountAccess,
    Effect.gen(function* () {
      const settings = yield* AwsConfig
      const runtime = yield* Effect.runtime<Sts>()
      return {
        clients: (target) => {
          const base = clientOptions({ ...settings, region: target.region })
          const roleArn = target.roleArn
          const options =
            roleArn === undefined
              ? base
              : { ...base, credentials: () => Runtime.runPromise(runtime)(assumeRole(roleArn, target.externalId)) }
          return Effect.acquireRelease(
            Effect.sync(
              (): RegionClients => ({
                region: target.region,
                ec2: new EC2Client(options),
                kms: new KMSClient(options),
                rds: new RDSClient(options)
              })
            ),
            (clients) =>
              Effect.sync(() => {
                clients.ec2.destroy()
                clients.kms.destroy()
                clients.rds.destroy()
              })
          )
        }
      }
    })
  )

  /** Fixed clients whatever the target: for tests that check requests against mocked clients. */
  static readonly fixed = (make: (target: AccountTarget) => RegionClients) =>
    Layer.succeed(AccountAccess, { clients: (target) => Effect.sync(() => make(target)) })
}
