import { Effect, Layer } from "effect"
import type { SourceDeletion } from "@backup-actions/contracts"
import { AwsError } from "../errors"
import { RecoveryPoints, type RecoveryPointRef, type RecoveryPointsShape } from "../recovery-points"

/**
 * Recovery points in memory, for tests of when a handler deletes a source: `deletions` is every
 * deletion asked for, in order. Each answers `answerWith`'s state ("deleted" until told
 * otherwise), and a recovery point told to `failOn` fails as AWS would refuse it.
 */
export const makeMemoryRecoveryPoints = () => {
  const deletions: Array<RecoveryPointRef> = []
  const refusals = new Map<string, AwsError>()
  let answer: SourceDeletion = "deleted"
  const shape: RecoveryPointsShape = {
    delete: (ref) =>
      Effect.suspend(() => {
        deletions.push(ref)
        const refusal = refusals.get(ref.recoveryPointArn)
        return refusal === undefined ? Effect.succeed(answer) : Effect.fail(refusal)
      })
  }
  return {
    deletions,
    answerWith: (state: SourceDeletion) => void (answer = state),
    failOn: (
      recoveryPointArn: string,
      error = new AwsError({ operation: "backup:DeleteRecoveryPoint", code: "AccessDeniedException", message: "refused by the test", kind: "client", httpStatus: 403 })
    ) => void refusals.set(recoveryPointArn, error),
    recoveryPoints: shape,
    layer: Layer.succeed(RecoveryPoints, shape)
  }
}

/** Fresh in-memory recovery points as a layer, each deleted when asked. */
export const MemoryRecoveryPoints = Layer.sync(RecoveryPoints, () => makeMemoryRecoveryPoints().recoveryPoints)
