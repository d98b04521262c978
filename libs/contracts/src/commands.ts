import { randomUUID } from "node:crypto"
import { Schema } from "effect"
import { defineContract, type Contract } from "./contract"

/**
 * Commands: work a service asks of itself through its own queue (a delayed message) or that
 * a schedule sends it (EventBridge Scheduler's SQS target). They never go on the bus, so no
 * rule matches them; they are shaped as EventBridge events so that one router reads them all.
 */
export const COMMAND_SOURCE = "backup-actions.commands" as const

/** Outcomes were recorded up to `recordedAt`; if nothing newer came in since, the run is over. */
export const ReportDue = defineContract({
  source: COMMAND_SOURCE,
  detailType: "Report Due",
  versioned: false,
  detail: Schema.Struct({ recordedAt: Schema.Number })
})

/** Build the day's report and send the digest; `day` (yyyy-mm-dd) defaults to yesterday, UTC. */
export const DigestDue = defineContract({
  source: COMMAND_SOURCE,
  detailType: "Digest Due",
  versioned: false,
  detail: Schema.Struct({ day: Schema.optional(Schema.String.pipe(Schema.pattern(/^\d{4}-\d{2}-\d{2}$/))) })
})

/**
 * Who sent a command and when: a fresh id and the current time for a message a service sends
 * itself, or the placeholders that EventBridge Scheduler fills in each time a schedule fires.
 */
export interface CommandStamp {
  readonly id: string
  readonly time: string
  readonly region: string
}

/**
 * A command as the EventBridge-shaped event that the router reads. The one shape of every
 * command body, whoever sends it: a service's own delayed message (`commandBody`) and a
 * schedule's target input (libs/deploy), so the two can never drift apart.
 */
export const commandEnvelope = <S extends string, D extends string, T>(contract: Contract<S, D, T>, detail: T, stamp: CommandStamp) => ({
  version: "0",
  id: stamp.id,
  "detail-type": contract.detailType,
  source: contract.source,
  time: stamp.time,
  region: stamp.region,
  resources: [],
  detail
})

/** The SQS body of a command that a service sends now, with a fresh id. */
export const commandBody = <S extends string, D extends string, T>(
  contract: Contract<S, D, T>,
  detail: T,
  options: { readonly region: string; readonly nowMs: number }
): string => JSON.stringify(commandEnvelope(contract, detail, { id: randomUUID(), time: new Date(options.nowMs).toISOString(), region: options.region }))

/** Delete temporary resources (restored volumes) that a crash left behind, once older than the limit. */
export const SweepDue = defineContract({
  source: COMMAND_SOURCE,
  detailType: "Sweep Due",
  versioned: false,
  detail: Schema.Struct({ olderThanHours: Schema.optionalWith(Schema.Number.pipe(Schema.positive()), { default: () => 6 }) })
})

/**
 * Replicate what the recovery-point events missed (a lost event, a sharer that was down, a step
 * that failed): the sources of the last `lookBackDays` that the replicate rules select and that
 * have no finished replica step yet. The window keeps a source that always fails from being
 * retried forever.
 */
export const ReplicaCatchUpDue = defineContract({
  source: COMMAND_SOURCE,
  detailType: "Replica Catch-Up Due",
  versioned: false,
  detail: Schema.Struct({ lookBackDays: Schema.optionalWith(Schema.Number.pipe(Schema.positive()), { default: () => 7 }) })
})

/**
 * Sweep the account's AMIs and export those the policy selects that are old enough (the
 * rule's olderThanDays) and not exported yet; each runs the same ledger step as the
 * recovery-point event, so an AMI is never exported twice.
 */
export const AmiSweepDue = defineContract({
  source: COMMAND_SOURCE,
  detailType: "AMI Sweep Due",
  versioned: false,
  detail: Schema.Struct({})
})
