import { assert, describe, it } from "@effect/vitest"
import { AssumeRoleCommand, STSClient } from "@aws-sdk/client-sts"
import { mockClient } from "aws-sdk-client-mock"
import { Effect, Exit, Layer } from "effect"
import { AccountAccess, assumeRole } from "./account-access"
import { AwsConfig } from "./clients"
import { Sts } from "./clients/sts"

const roleArn = "arn:aws:iam::222222222222:role/backup-actions-dr-replicator"

const mockedSts = () => {
  const client = new STSClient({ region: "us-east-1" })
  return { client, mock: mockClient(client) }
}

describe("reaching another account", () => {
  it.effect("assumes the role with the external id its trust policy requires and keeps the temporary token", () =>
    Effect.gen(function* () {
      // Prepare
      const { client, mock } = mockedSts()
      const expiration = new Date("2026-01-01T01:00:00Z")
      mock.on(AssumeRoleCommand).resolves({ Credentials: { AccessKeyId: "ASIA1", SecretAccessKey: "secret", SessionToken: "token", Expiration: expiration } })
      // Act
      const credentials = yield* assumeRole({ roleArn, externalId: "dr-external-id", sessionName: "backup-actions-sharer" }).pipe(Effect.provideService(Sts, client))
      // Assess
      assert.deepStrictEqual(mock.commandCalls(AssumeRoleCommand).map((call) => call.args[0].input), [
        { RoleArn: roleArn, RoleSessionName: "backup-actions-sharer", ExternalId: "dr-external-id", DurationSeconds: 3600 }
      ])
      assert.deepStrictEqual(credentials, { accessKeyId: "ASIA1", secretAccessKey: "secret", sessionToken: "token", expiration })
    })
  )

  it.effect("a check of a role that cannot be assumed fails with STS's own answer, and the own account needs no check", () =>
    Effect.gen(function* () {
      // Prepare
      const { client, mock } = mockedSts()
      mock.on(AssumeRoleCommand).rejects(Object.assign(new Error("not authorized to perform sts:AssumeRole"), { name: "AccessDenied", $metadata: { httpStatusCode: 403 } }))
      const layer = AccountAccess.layer("backup-actions-failover").pipe(Layer.provide(Layer.merge(AwsConfig.layer({ region: "us-east-1" }), Layer.succeed(Sts, client))))
      // Act
      const own = yield* Effect.exit(Effect.flatMap(AccountAccess, (access) => access.check({ region: "eu-west-1" })).pipe(Effect.provide(layer)))
      const other = yield* Effect.flip(Effect.flatMap(AccountAccess, (access) => access.check({ region: "eu-west-1", roleArn, externalId: "x" })).pipe(Effect.provide(layer)))
      // Assess
      assert.isTrue(Exit.isSuccess(own))
      assert.strictEqual(other.code, "AccessDenied")
      assert.deepStrictEqual(mock.commandCalls(AssumeRoleCommand).map((call) => call.args[0].input.RoleSessionName), ["backup-actions-failover"])
    })
  )
})
