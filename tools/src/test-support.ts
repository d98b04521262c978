import { execFileSync } from "node:child_process"
import { Effect, Layer, Option, type Scope } from "effect"
import { AwsConfig, Ec2, Rds, assumeRole } from "@backup-actions/aws"
import { emulatorAwsConfig } from "@backup-actions/local"
import type { LocalStack } from "./stack"

/** What an end-to-end test's effects may use: the stack's clients, its AWS settings (to derive other regions and accounts) and a scope. */
export type StackServices = Layer.Layer.Success<LocalStack["clients"]> | AwsConfig | Scope.Scope

/** Runs an effect against a local stack's emulator, its scope closed when the effect ends. */
export const runOn = <A, E>(local: LocalStack, effect: Effect.Effect<A, E, StackServices>): Promise<A> =>
  Effect.runPromise(Effect.scoped(effect.pipe(Effect.provide(local.clients), Effect.provide(emulatorAwsConfig(local.emulator.endpoint)))))

/** Downloads an object with the AWS CLI, a client independent of this project's code, so that what the tests read back is not read by the code under test. */
export const downloadWithAwsCli = (local: LocalStack, object: { readonly bucket: string; readonly key: string }, file: string): void => {
  execFileSync("aws", ["--endpoint-url", local.emulator.endpoint, "s3", "cp", `s3://${object.bucket}/${object.key}`, file, "--only-show-errors"], {
    env: { ...process.env, ...local.environment("streamer"), AWS_DEFAULT_REGION: "us-east-1" },
    stdio: "pipe"
  })
}

/** Runs an effect with EC2 and RDS clients of the caller's own account in another region. */
export const inOwnAccount = <A, E>(region: string, effect: Effect.Effect<A, E, Ec2 | Rds>) =>
  Effect.flatMap(AwsConfig, (settings) => Effect.provide(effect, Layer.provide(Layer.merge(Ec2.Live, Rds.Live), AwsConfig.layer({ ...settings, region }))))

/** The role of another account that a test acts through, as the sharer or a failover does. */
export interface AssumedRole {
  readonly roleArn: string
  readonly externalId: string
  readonly sessionName: string
  readonly region: string
}

/** Runs an effect with an EC2 client of the role's account in its region: the emulator acts in the account whose credentials AssumeRole returns. */
export const inRoleAccount = <A, E>(role: AssumedRole, effect: Effect.Effect<A, E, Ec2>) =>
  Effect.gen(function* () {
    const credentials = yield* assumeRole(role)
    const settings = yield* AwsConfig
    return yield* Effect.provide(effect, Layer.provide(Ec2.Live, AwsConfig.layer({ ...settings, region: role.region, credentials: Option.some(credentials) })))
  })
