import { Agent as HttpAgent } from "node:http"
import { Agent as HttpsAgent } from "node:https"
import { NodeHttpHandler } from "@smithy/node-http-handler"
import { Config, Context, Effect, Layer, Option } from "effect"

/** Where and how the AWS clients connect. No endpoint means real AWS. */
export interface AwsSettings {
  readonly region: string
  /** The local emulator's URL; absent against real AWS. */
  readonly endpoint: Option.Option<string>
  readonly connectTimeoutMs: number
  /** Socket inactivity limit for one request. */
  readonly requestTimeoutMs: number
  readonly maxSockets: number
  /** Explicit credentials (the emulator's); otherwise the SDK's default provider chain. */
  readonly credentials: Option.Option<{ readonly accessKeyId: string; readonly secretAccessKey: string }>
}

export class AwsConfig extends Context.Tag("backup-actions/AwsConfig")<AwsConfig, AwsSettings>() {
  /** Reads AWS_REGION and BACKUP_ACTIONS_AWS_ENDPOINT (the emulator, when set). */
  static readonly fromEnv = Layer.effect(
    AwsConfig,
    Effect.gen(function* () {
      const region = yield* Config.string("AWS_REGION").pipe(
        Config.orElse(() => Config.string("AWS_DEFAULT_REGION")),
        Config.withDefault("us-east-1")
      )
      const endpoint = yield* Config.option(Config.string("BACKUP_ACTIONS_AWS_ENDPOINT"))
      return { region, endpoint, connectTimeoutMs: 3_000, requestTimeoutMs: 60_000, maxSockets: 64, credentials: Option.none() }
    })
  )

  static readonly layer = (settings: Partial<AwsSettings> & { readonly region: string }) =>
    Layer.succeed(AwsConfig, {
      endpoint: Option.none(),
      connectTimeoutMs: 3_000,
      requestTimeoutMs: 60_000,
      maxSockets: 64,
      credentials: Option.none(),
      ...settings
    })
}

/** True when the clients talk to the local emulator rather than to AWS. */
export const isEmulated = (settings: AwsSettings): boolean => Option.isSome(settings.endpoint)

/** The options every client shares: region, endpoint, timeouts, and no SDK retries (awsCall retries). */
export const clientOptions = (settings: AwsSettings) => ({
  region: settings.region,
  maxAttempts: 1,
  requestHandler: new NodeHttpHandler({
    connectionTimeout: settings.connectTimeoutMs,
    requestTimeout: settings.requestTimeoutMs,
    httpAgent: new HttpAgent({ keepAlive: true, maxSockets: settings.maxSockets }),
    httpsAgent: new HttpsAgent({ keepAlive: true, maxSockets: settings.maxSockets })
  }),
  ...Option.match(settings.endpoint, { onNone: () => ({}), onSome: (endpoint) => ({ endpoint }) }),
  ...Option.match(settings.credentials, { onNone: () => ({}), onSome: (credentials) => ({ credentials }) })
})

/** A client made when the layer is built and destroyed when its scope closes. */
export const scopedClient = <Id, C extends { destroy(): void }>(
  tag: Context.Tag<Id, C>,
  make: (settings: AwsSettings) => C
): Layer.Layer<Id, never, AwsConfig> =>
  Layer.scoped(
    tag,
    Effect.acquireRelease(Effect.map(AwsConfig, make), (client) => Effect.sync(() => client.destroy()))
  )

