import { DescribeKeyCommand, type KMSClient } from "@aws-sdk/client-kms"
import { Effect, Schema } from "effect"
import { awsCall } from "@backup-actions/aws"

/** The destination key can't protect a replica; the reason says why and what to do. */
export class KeyRefused extends Schema.TaggedError<KeyRefused>()("KeyRefused", {
  keyId: Schema.String,
  reason: Schema.String
}) {}

const describeKey = (kms: KMSClient, keyId: string) =>
  awsCall("kms:DescribeKey", (abortSignal) => kms.send(new DescribeKeyCommand({ KeyId: keyId }), { abortSignal })).pipe(
    Effect.map((result) => result.KeyMetadata)
  )

/**
 * The ARN of the destination's key, after checking that it is a customer managed key that is
 * enabled: an AWS managed key can't be granted to anyone else, and a disabled one fails the copy
 * late. The ARN (not the alias) goes into CopySnapshot and the event.
 */
export const resolveDestinationKey = (kms: KMSClient, keyId: string, where: string) =>
  Effect.gen(function* () {
    const key = yield* describeKey(kms, keyId).pipe(
      Effect.catchIf(
        (error) => error.kind === "not-found",
        () => new KeyRefused({ keyId, reason: `KMS key ${keyId} does not exist in ${where}; create it there or fix kmsKeyId` })
      )
    )
    if (key?.Arn === undefined) return yield* new KeyRefused({ keyId, reason: `KMS key ${keyId} in ${where} has no ARN` })
    if (key.KeyManager === "AWS") {
      return yield* new KeyRefused({ keyId, reason: `KMS key ${keyId} in ${where} is AWS managed; name a customer managed key of the destination` })
    }
    if (key.KeyState !== undefined && key.KeyState !== "Enabled") {
      return yield* new KeyRefused({ keyId, reason: `KMS key ${keyId} in ${where} is ${key.KeyState}, not Enabled` })
    }
    return key.Arn
  })

/** Whether the source's key is AWS managed (aws/ebs, aws/rds): such a key can't be shared with another account. */
export const isAwsManagedKey = (kms: KMSClient, keyId: string) =>
  Effect.map(describeKey(kms, keyId), (key) => key?.KeyManager === "AWS")
