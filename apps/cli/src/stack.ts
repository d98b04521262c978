import { readFile } from "node:fs/promises"
import { Context, Effect, Either, Layer, Option, ParseResult, Schema } from "effect"
import { AwsConfig, DynamoDb, Ebs, Ec2, EventBridge, S3 } from "@backup-actions/aws"
import { StackNotFound } from "./errors"

/** Where the stack is and what its shared resources are called; any name may be unknown. */
export interface StackShape {
  readonly region: string
  /**
   * The endpoint the stack file names, given to every client as it is; none leaves the endpoint
   * to the SDK's own settings (AWS_ENDPOINT_URL, the profile), which default to AWS's.
   */
  readonly endpoint: Option.Option<string>
  readonly busName: Option.Option<string>
  readonly busArn: Option.Option<string>
  readonly archiveName: Option.Option<string>
  readonly artifactBucket: Option.Option<string>
  readonly ledgerTable: Option.Option<string>
  /** Where this came from, for error messages: the file, or "the environment". */
  readonly origin: string
}

export class Stack extends Context.Tag("backup-actions/cli/Stack")<Stack, StackShape>() {}

/** The part of the file `startLocalStack` writes (.local/stack.json) that the CLI reads. */
const StackFile = Schema.Struct({
  endpoint: Schema.optional(Schema.String),
  region: Schema.String,
  busName: Schema.String,
  busArn: Schema.optional(Schema.String),
  archiveName: Schema.optional(Schema.String),
  artifactBucket: Schema.String,
  ledgerTable: Schema.String
})
const decodeStackFile = Schema.decodeUnknownEither(Schema.parseJson(StackFile))

const nonEmpty = (value: string | undefined): Option.Option<string> => Option.filter(Option.fromNullable(value), (text) => text.length > 0)

/** The stack from a file written by the local stack (or by hand for AWS). */
export const stackFromFile = (file: string) =>
  Effect.gen(function* () {
    const text = yield* Effect.tryPromise({
      try: () => readFile(file, "utf8"),
      catch: (error) => new StackNotFound({ message: `cannot read the stack file ${file}: ${error instanceof Error ? error.message : String(error)}` })
    })
    const decoded = decodeStackFile(text)
    if (Either.isLeft(decoded)) {
      return yield* new StackNotFound({
        message: `${file} is not a stack description (region, busName, artifactBucket, ledgerTable): ${ParseResult.TreeFormatter.formatErrorSync(decoded.left)}`
      })
    }
    const described = decoded.right
    const stack: StackShape = {
      region: described.region,
      endpoint: nonEmpty(described.endpoint),
      busName: Option.some(described.busName),
      busArn: nonEmpty(described.busArn),
      archiveName: nonEmpty(described.archiveName),
      artifactBucket: Option.some(described.artifactBucket),
      ledgerTable: Option.some(described.ledgerTable),
      origin: file
    }
    return stack
  })

/**
 * The stack as the services see it: the same environment variables. The endpoint and the
 * credentials are the SDK's to read (AWS_ENDPOINT_URL, AWS_PROFILE, ...), as for any AWS client.
 */
export const stackFromEnvironment = (environment: Readonly<Record<string, string | undefined>>): StackShape => ({
  region: nonEmpty(environment["AWS_REGION"]).pipe(
    Option.orElse(() => nonEmpty(environment["AWS_DEFAULT_REGION"])),
    Option.getOrElse(() => "us-east-1")
  ),
  endpoint: Option.none(),
  busName: nonEmpty(environment["BACKUP_ACTIONS_BUS"]),
  busArn: Option.none(),
  archiveName: nonEmpty(environment["BACKUP_ACTIONS_ARCHIVE"]),
  artifactBucket: nonEmpty(environment["BACKUP_ACTIONS_BUCKET"]),
  ledgerTable: nonEmpty(environment["BACKUP_ACTIONS_LEDGER_TABLE"]),
  origin: "the environment"
})

const ENVIRONMENT_NAMES = {
  busName: "BACKUP_ACTIONS_BUS",
  artifactBucket: "BACKUP_ACTIONS_BUCKET",
  ledgerTable: "BACKUP_ACTIONS_LEDGER_TABLE"
} as const

/** One of the stack's names, or a clear error that says how to provide it. */
export const requireName = (name: keyof typeof ENVIRONMENT_NAMES) =>
  Effect.flatMap(Stack, (stack) =>
    Option.match(stack[name], {
      onSome: (value) => Effect.succeed(value),
      onNone: () =>
        Effect.fail(
          new StackNotFound({
            message: `no stack found: set ${ENVIRONMENT_NAMES[name]} (and AWS_REGION) or pass --stack <file> (\`npm start\` writes .local/stack.json)`
          })
        )
    })
  )

/** AWS client settings for a stack: its region and endpoint; credentials from the SDK's default provider chain. */
export const awsConfigFor = (stack: StackShape) => AwsConfig.layer({ region: stack.region, endpoint: stack.endpoint })

/** The clients the commands use, from one stack description. */
export const stackLayer = (stack: StackShape) =>
  Layer.mergeAll(S3.Live, Ebs.Live, Ec2.Live, DynamoDb.Live, EventBridge.Live).pipe(
    Layer.provideMerge(awsConfigFor(stack)),
    Layer.merge(Layer.succeed(Stack, stack))
  )
