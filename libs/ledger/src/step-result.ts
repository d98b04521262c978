/** How a step ended: its outcome is kept in the ledger either way. */
export type StepResult<A> =
  | { readonly _tag: "Succeeded"; readonly outcome: A }
  | { readonly _tag: "Failed"; readonly reason: string; readonly outcome: A }

export const succeeded = <A>(outcome: A): StepResult<A> => ({ _tag: "Succeeded", outcome })
export const failed = <A>(reason: string, outcome: A): StepResult<A> => ({ _tag: "Failed", reason, outcome })
