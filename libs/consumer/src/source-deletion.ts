import { Effect } from "effect"
import { STEP_POINTS, failpoint, type InjectedFault } from "@backup-actions/aws"
import { type SourceDeletion, isSourceGone } from "@backup-actions/contracts"
import { failed, succeeded } from "@backup-actions/ledger"
import { runFenced } from "./step"

/** The ledger action under which a recovery point's deletion is recorded, once per recovery point. */
export const DELETE_SOURCE_ACTION = "delete-source"

/** What the deletion step keeps in the ledger. */
export interface SourceDeletionOutcome extends Record<string, unknown> {
  readonly state: SourceDeletion
  readonly reason?: string
}

/**
 * Deletes a recovery point as a step of its own, run only after the artifact's step is
 * recorded. `remove` must be idempotent and say what a describe saw afterwards (a not-found
 * after a lost reply counts as deleted once the describe confirms it). A deletion that already
 * ran returns what it recorded then; a failed one is recorded as still there, with the reason,
 * and runs again on the next delivery. It never throws away what an artifact step recorded.
 */
export const deleteSourceOnce = <E extends { readonly message: string }, R>(recoveryPointArn: string, remove: Effect.Effect<SourceDeletion, E, R>) =>
  runFenced<SourceDeletionOutcome, InjectedFault, R>(
    { recoveryPointArn, action: DELETE_SOURCE_ACTION },
    { gaveUp: (reason) => ({ state: "still-there", reason }) },
    () =>
      remove.pipe(
        Effect.map((state) =>
          isSourceGone(state) || state === "expired"
            ? succeeded<SourceDeletionOutcome>({ state })
            : failed<SourceDeletionOutcome>("the recovery point was still there after its deletion", { state, reason: "still there after its deletion" })
        ),
        Effect.catchAll((error) => Effect.succeed(failed<SourceDeletionOutcome>(error.message, { state: "still-there", reason: error.message }))),
        // The deletion went through; the worker may die before the ledger knows.
        Effect.tap(() => failpoint(STEP_POINTS.afterSourceDeleted))
      )
  ).pipe(
    Effect.map((ran): SourceDeletion => {
      const outcome = ran._tag === "Ran" ? ran.result.outcome : ran.record.outcome
      const state = outcome?.["state"]
      return state === "deleted" || state === "deleting" || state === "expired" ? state : "still-there"
    }),
    Effect.tap((state) => Effect.logInfo(`deletion of recovery point ${recoveryPointArn}: ${state}`))
  )
