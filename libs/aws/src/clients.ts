import { Agent as HttpAgent } from "node:http"
import { Agent as HttpsAgent } from "node:https"
import { NodeHttpHandler } from "@smithy/node-http-handler"
import { Config, Context, Effect, Layer, Option } from "effect"

/** Where and how the AWS clients connect. */
export interface AwsSettings {
  readonly region: string
  /**
   * A URL every client sends its requests to instead of the one the SDK resolves. Plain client
   * configuration: nothing else reads it. Absent, the SDK resolves the endpoint itself (which
   * includes its own AWS_ENDPOINT_URL setting).
   */
  readonly endpoint: Option.Option<string>
  readonly connectTimeoutMs: number
  /** Socket inactivity limit for one request. */
  readonly requestTimeoutMs: number
  readonly maxSockets: number
  /** Explicit credentials; otherwise the SDK's default provider chain. */
  readonly credentials: Option.Option<{ readonly accessKeyId: string; readonly secretAccessKey: string }>
}

export class AwsConfig extends Context.Tag("backup-actions/AwsConfig")<AwsConfig, AwsSettings>() {
  /**
   * Reads the region (AWS_REGION, else AWS_DEFAULT_REGION) and nothing else: endpoints and
   * credentials are the SDK's own resolution from the environment.
   */
  static readonly fromEnv = Layer.effect(
    AwsConfig,
    Effect.gen(function* () {
      const region = yield* Config.string("AWS_REGION").pipe(
        Config.orElse(() => Config.string("AWS_DEFAULT_REGION")),
        Config.withDefault("us-east-1")
      )
      return { region, endpoint: Option.none(), connectTimeoutMs: 3_000, requestTimeoutMs: 60_000, maxSockets: 64, credentials: Option.none() }
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

