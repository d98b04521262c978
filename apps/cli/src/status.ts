import { QueryCommand, ScanCommand, type AttributeValue } from "@aws-sdk/client-dynamodb"
import { unmarshall } from "@aws-sdk/util-dynamodb"
import { Console, Effect, Either, Schema } from "effect"
import { DynamoDb, awsCall } from "@backup-actions/aws"
import { requireName } from "./stack"

/** One step as the status shows it. */
export interface StepStatus {
  readonly recoveryPoint: string
  readonly action: string
  readonly status: string
  readonly attempts: number
  readonly startedAt: string | undefined
  readonly finishedAt: string | undefined
  readonly location: string | undefined
  readonly reason: string | undefined
}

const Location = Schema.Union(Schema.String, Schema.Struct({ bucket: Schema.String, key: Schema.String }))

/** A ledger item, read leniently: the status shows whatever a step has, and skips what is not a step. */
const LedgerItem = Schema.Struct({
  pk: Schema.String,
  sk: Schema.String,
  status: Schema.String,
  attempts: Schema.optional(Schema.Number),
  startedAt: Schema.optional(Schema.Number),
  finishedAt: Schema.optional(Schema.Number),
  reason: Schema.optional(Schema.String),
  outcome: Schema.optional(
    Schema.Struct({
      location: Schema.optional(Location),
      volumeId: Schema.optional(Schema.String),
      replicaArn: Schema.optional(Schema.String)
    })
  )
})
const decodeItem = Schema.decodeUnknownEither(LedgerItem)

/** Items whose key starts like this are the reporter's or the drills' records, not steps. */
const REPORTER_KEYS = /^(outcome|report|drill)#/

const isoOf = (millis: number | undefined): string | undefined => (millis === undefined || millis <= 0 ? undefined : new Date(millis).toISOString())

/** Turns a ledger item into a step, or nothing when the item is the reporter's or not a step. */
export const stepOf = (item: Record<string, unknown>): StepStatus | undefined => {
  if (typeof item["pk"] === "string" && REPORTER_KEYS.test(item["pk"])) return undefined
  const decoded = decodeItem(item)
  if (Either.isLeft(decoded)) return undefined
  const step = decoded.right
  const location = step.outcome?.location
  return {
    recoveryPoint: step.pk,
    action: step.sk,
    status: step.status,
    attempts: step.attempts ?? 0,
    startedAt: isoOf(step.startedAt),
    finishedAt: isoOf(step.finishedAt),
    location:
      location === undefined
        ? step.outcome?.volumeId !== undefined
          ? `volume ${step.outcome.volumeId}`
          : step.outcome?.replicaArn
        : typeof location === "string"
          ? location
          : `s3://${location.bucket}/${location.key}`,
    reason: step.reason
  }
}

/** Reads every step (or one recovery point's), page by page. */
export const readSteps = (recoveryPoint: string | undefined) =>
  Effect.gen(function* () {
    const dynamodb = yield* DynamoDb
    const table = yield* requireName("ledgerTable")
    const steps: Array<StepStatus> = []
    let startKey: Record<string, AttributeValue> | undefined
    do {
      const page = yield* recoveryPoint === undefined
        ? awsCall("dynamodb:Scan", (abortSignal) =>
            dynamodb.send(new ScanCommand({ TableName: table, ConsistentRead: true, ExclusiveStartKey: startKey }), { abortSignal })
          )
        : awsCall("dynamodb:Query", (abortSignal) =>
            dynamodb.send(
              new QueryCommand({
                TableName: table,
                ConsistentRead: true,
                KeyConditionExpression: "pk = :pk",
                ExpressionAttributeValues: { ":pk": { S: recoveryPoint } },
                ExclusiveStartKey: startKey
              }),
              { abortSignal }
            )
          )
      for (const item of page.Items ?? []) {
        const step = stepOf(unmarshall(item))
        if (step !== undefined) steps.push(step)
      }
      startKey = page.LastEvaluatedKey
    } while (startKey !== undefined)
    return steps.sort((left, right) => left.recoveryPoint.localeCompare(right.recoveryPoint) || left.action.localeCompare(right.action))
  })

/** The steps grouped under their recovery point, one line each. */
export const formatSteps = (steps: ReadonlyArray<StepStatus>): string => {
  if (steps.length === 0) return "no steps in the ledger"
  const lines: Array<string> = []
  let current: string | undefined
  const width = Math.max(...steps.map((step) => step.action.length))
  for (const step of steps) {
    if (step.recoveryPoint !== current) {
      if (current !== undefined) lines.push("")
      lines.push(step.recoveryPoint)
      current = step.recoveryPoint
    }
    const when = step.finishedAt ?? step.startedAt ?? ""
    const attempts = `${step.attempts} attempt${step.attempts === 1 ? "" : "s"}`
    lines.push(`  ${step.action.padEnd(width)}  ${step.status.padEnd(9)}  ${attempts.padEnd(10)}  ${when}`)
    if (step.location !== undefined) lines.push(`  ${"".padEnd(width)}  artifact: ${step.location}`)
    if (step.reason !== undefined) lines.push(`  ${"".padEnd(width)}  reason: ${step.reason}`)
  }
  return lines.join("\n")
}

/** `status`: the ledger's steps per recovery point. */
export const statusCommand = (options: { readonly recoveryPoint: string | undefined; readonly json: boolean }) =>
  Effect.gen(function* () {
    const steps = yield* readSteps(options.recoveryPoint)
    yield* Console.log(options.json ? JSON.stringify(steps, null, 2) : formatSteps(steps))
  })
