import { EC2Client } from "@aws-sdk/client-ec2"
import { KMSClient } from "@aws-sdk/client-kms"
import { RDSClient } from "@aws-sdk/client-rds"
import { AssumeRoleCommand } from "@aws-sdk/client-sts"
import { Context, Effect, Layer, Runtime, type Scope } from "effect"
import { awsCall } from "./call"
import { AwsConfig, clientOptions } from "./clients"
import { Sts } from "./clients/sts"
import { AwsError } from "./errors"

/** A region of the caller's own account, or of another account reached through a role. */
export interface AccountTarget {
  readonly region: string
  readonly roleArn?: string | undefined
  readonly externalId?: string | undefined
}

/** The clients used in one account and region. */
export interface RegionClients {
  readonly region: string
  readonly ec2: EC2Client
  readonly kms: KMSClient
  readonly rds: RDSClient
}

/** Temporary credentials from STS, in the shape the SDK's credential providers return. */
export interface AssumedCredentials {
  readonly accessKeyId: string
  readonly secretAccessKey: string
  readonly sessionToken?: string
  readonly expiration?: Date
}

export interface AccountAccessShape {
  /** Clients for the target, destroyed when the scope closes. */
  readonly clients: (target: AccountTarget) => Effect.Effect<RegionClients, never, Scope.Scope>
  /**
   * Assumes the target's role once, so that a role that cannot be assumed fails here with its
   * own error rather than on the first call made with its clients. Nothing to do for the
   * caller's own account.
   */
  readonly check: (target: AccountTarget) => Effect.Effect<void, AwsError>
}

/**
 * Asks STS for a role's temporary credentials, with the external id its trust policy requires.
 * The session name is how the caller appears in the other account's CloudTrail.
 */
export const assumeRole = (request: { readonly roleArn: string; readonly externalId?: string | undefined; readonly sessionName: string }) =>
  Effect.gen(function* () {
    const sts = yield* Sts
    const result = yield* awsCall("sts:AssumeRole", (abortSignal) =>
      sts.send(
        new AssumeRoleCommand({ RoleArn: request.roleArn, RoleSessionName: request.sessionName, ExternalId: request.externalId, DurationSeconds: 3600 }),
        { abortSignal }
      )
    )
    const credentials = result.Credentials
    if (credentials?.AccessKeyId === undefined || credentials.SecretAccessKey === undefined) {
      return yield* new AwsError({ operation: "sts:AssumeRole", code: "MissingCredentials", message: `STS answered without credentials for ${request.roleArn}`, kind: "client" })
    }
    const assumed: AssumedCredentials = {
      accessKeyId: credentials.AccessKeyId,
      secretAccessKey: credentials.SecretAccessKey,
      ...(credentials.SessionToken === undefined ? {} : { sessionToken: credentials.SessionToken }),
      ...(credentials.Expiration === undefined ? {} : { expiration: credentials.Expiration })
    }
    return assumed
  })

/**
 * Clients in any account and region: the one way every part of the product (the sharer, the
 * CLI's failover, the local DR account) reaches another account. Another account's clients get
 * their credentials from STS AssumeRole through a provider function: the SDK caches what it
 * returns and asks again shortly before the expiration, so work that outlasts one session
 * (a copy that takes hours) keeps working.
 */
export class AccountAccess extends Context.Tag("backup-actions/AccountAccess")<AccountAccess, AccountAccessShape>() {
  /** Live access whose sessions in other accounts are named `sessionName`. */
  static readonly layer = (sessionName: string): Layer.Layer<AccountAccess, never, AwsConfig | Sts> =>
    Layer.effect(
      AccountAccess,
      Effect.gen(function* () {
        const settings = yield* AwsConfig
        const runtime = yield* Effect.runtime<Sts>()
        const assume = (roleArn: string, externalId: string | undefined) => assumeRole({ roleArn, externalId, sessionName })
        return {
          clients: (target) => {
            const base = clientOptions({ ...settings, region: target.region })
            const roleArn = target.roleArn
            const options = roleArn === undefined ? base : { ...base, credentials: () => Runtime.runPromise(runtime)(assume(roleArn, target.externalId)) }
            return Effect.acquireRelease(
              Effect.sync((): RegionClients => ({ region: target.region, ec2: new EC2Client(options), kms: new KMSClient(options), rds: new RDSClient(options) })),
              (clients) =>
                Effect.sync(() => {
                  clients.ec2.destroy()
                  clients.kms.destroy()
                  clients.rds.destroy()
                })
            )
          },
          check: (target) =>
            target.roleArn === undefined ? Effect.void : assume(target.roleArn, target.externalId).pipe(Effect.asVoid, Effect.provide(runtime.context))
        }
      })
    )
}
