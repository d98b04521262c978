import { assert, describe, it } from "@effect/vitest"
import { AssumeRoleCommand, STSClient } from "@aws-sdk/client-sts"
import { mockClient } from "aws-sdk-client-mock"
import { Effect } from "effect"
import { Sts } from "@backup-actions/aws"
import { ASSUMED_ROLE_CALLER, assumeRole } from "./accounts"

describe("reaching the destination account", () => {
  it.effect("assumes the role with the external id its trust policy requires and keeps the temporary token", () =>
    Effect.gen(function* () {
      // Prepare
      const client = new STSClient({ region: "us-east-1" })
      const mock = mockClient(client)
      const expiration = new Date("2026-01-01T01:00:00Z")
      mock.on(AssumeRoleCommand).resolves({ Credentials: { AccessKeyId: "ASIA1", SecretAccessKey: "secret", SessionToken: "token", Expiration: expiration } })
      const roleArn = "arn:aws:iam::222222222222:role/backup-actions-dr-replicator"
      // Act
      const credentials = yield* assumeRole(roleArn, "dr-external-id").pipe(Effect.provideService(Sts, client))
      // Assess
      assert.deepStrictEqual(mock.commandCalls(AssumeRoleCommand).map((call) => call.args[0].input), [
        { RoleArn: roleArn, RoleSessionName: ASSUMED_ROLE_CALLER, ExternalId: "dr-external-id", DurationSeconds: 3600 }
      ])
      assert.deepStrictEqual(credentials, { accessKeyId: "ASIA1", secretAccessKey: "secret", sessionToken: "token", expiration })
    })
  )
})
