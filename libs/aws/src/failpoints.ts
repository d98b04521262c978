import { Effect, Schema } from "effect"

/**
 * Fault injection at named points, for the fault suite: `BACKUP_ACTIONS_FAILPOINTS` holds
 * `name=action[*count]` pairs separated by commas, e.g.
 * `step:after-record=kill,events:PutEvents=fail*3,backup:DeleteRecoveryPoint=lost-reply*1`.
 *
 * - `kill`: the process kills itself with SIGKILL, as an OOM kill or a lost host would.
 * - `fail`: the point fails (an AWS call answers an error that is not retried).
 * - `lost-reply`: an AWS call is sent and carried out, and its answer is thrown away: the
 *   caller sees a timeout, as after a dropped connection.
 * - `hang`: the point never returns (a spawned tool is stopped with SIGSTOP instead).
 * - `corrupt`: at a point that makes data (`compress:frame`), the data is made from other
 *   bytes, well formed, so that every checksum taken after it holds; elsewhere it does nothing.
 *
 * Names are an AWS operation as written at its `awsCall` site, or a point that the step
 * runtime or a spawned tool names (`step:after-work`, `step:after-record`,
 * `source:after-delete`, `spawn:tar`, ...). Without the variable, nothing is armed and every
 * point is a map lookup that finds nothing.
 */
export const FAILPOINTS_VARIABLE = "BACKUP_ACTIONS_FAILPOINTS"

/** The points the step runtime names, beside every AWS operation and `spawn:<tool>`. */
export const STEP_POINTS = {
  /** A step was claimed; its work has not started. */
  afterClaim: "step:after-claim",
  /** The work ended (the artifact is written); the ledger does not know yet. */
  afterWork: "step:after-work",
  /** The ledger recorded how the step ended; its event is not published yet. */
  afterRecord: "step:after-record",
  /** The source was deleted; the deletion step is not recorded yet. */
  afterSourceDeleted: "source:after-delete"
} as const

/** A chunk was compressed into a frame; `corrupt` makes the frame from other bytes. */
export const COMPRESSED_FRAME_POINT = "compress:frame"

export const FailpointAction = Schema.Literal("kill", "fail", "lost-reply", "hang", "corrupt")
export type FailpointAction = typeof FailpointAction.Type

interface Armed {
  readonly action: FailpointAction
  /** Firings left; undefined fires every time. */
  remaining: number | undefined
}

/** A fault that a failpoint injected. */
export class InjectedFault extends Schema.TaggedError<InjectedFault>()("InjectedFault", {
  point: Schema.String,
  message: Schema.String
}) {}

const isAction = Schema.is(FailpointAction)

/** Parses the variable's value; a malformed entry is refused with the entry named. */
export const parseFailpoints = (value: string): Map<string, Armed> => {
  const armed = new Map<string, Armed>()
  for (const entry of value.split(",").map((part) => part.trim()).filter((part) => part !== "")) {
    const match = /^([^=]+)=([a-z-]+)(?:\*(\d+))?$/.exec(entry)
    const action = match?.[2]
    if (match === null || action === undefined || !isAction(action)) {
      throw new Error(`${FAILPOINTS_VARIABLE}: "${entry}" is not name=kill|fail|lost-reply|hang|corrupt[*count]`)
    }
    armed.set(match[1] ?? "", { action, remaining: match[3] === undefined ? undefined : Number(match[3]) })
  }
  return armed
}

/** The points armed by the variable as it is now, parsed again only when it changes (a test may set it after import). */
let armedFrom = ""
let armed = new Map<string, Armed>()
const armedNow = (): Map<string, Armed> => {
  const value = process.env[FAILPOINTS_VARIABLE] ?? ""
  if (value !== armedFrom) {
    armed = parseFailpoints(value)
    armedFrom = value
  }
  return armed
}

/** The action armed at this point, if any, counting one firing. */
export const firedAction = (point: string): FailpointAction | undefined => {
  const armed = armedNow()
  if (armed.size === 0) return undefined
  const entry = armed.get(point)
  if (entry === undefined || entry.remaining === 0) return undefined
  if (entry.remaining !== undefined) entry.remaining -= 1
  process.stderr.write(`failpoint ${point}: ${entry.action}\n`)
  return entry.action
}

/** Kills this process at once, as the kernel's OOM killer would: no finalizer runs. */
export const killSelf = (): never => {
  process.kill(process.pid, "SIGKILL")
  throw new Error("unreachable: SIGKILL did not end the process")
}

/** A named point in the runtime: does what is armed there, if anything. */
export const failpoint = (point: string): Effect.Effect<void, InjectedFault> =>
  Effect.suspend(() => {
    const action = firedAction(point)
    switch (action) {
      case undefined:
      case "corrupt":
        return Effect.void
      case "kill":
        return Effect.sync(killSelf)
      case "hang":
        return Effect.never
      case "fail":
      case "lost-reply":
        return Effect.fail(new InjectedFault({ point, message: `fault injected at ${point}` }))
    }
  })
