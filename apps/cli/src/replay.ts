import { randomBytes } from "node:crypto"
import {
  DeleteRuleCommand,
  DescribeArchiveCommand,
  DescribeEventBusCommand,
  DescribeReplayCommand,
  ListArchivesCommand,
  ListRulesCommand,
  ListTargetsByRuleCommand,
  PutRuleCommand,
  PutTargetsCommand,
  RemoveTargetsCommand,
  StartReplayCommand,
  type DescribeReplayCommandOutput,
  type Rule,
  type Target
} from "@aws-sdk/client-eventbridge"
import { Clock, Console, Duration, Effect, Option, Schedule, Schema } from "effect"
import { EventBridge, awsCall } from "@backup-actions/aws"
import { CheckFailed, OperationFailed, UsageError } from "./errors"
import { Progress } from "./progress"
import { Stack, requireName } from "./stack"

export interface ReplayRequest {
  readonly from: Date
  readonly to: Date
  readonly detailType: string | undefined
  readonly recoveryPoint: string | undefined
}

const PatternShape = Schema.Struct({ "detail-type": Schema.optional(Schema.Array(Schema.Unknown)) })
const decodePattern = Schema.decodeUnknownOption(Schema.parseJson(PatternShape))

/** Whether a rule's pattern takes this detail-type (a pattern without one takes every type). */
export const ruleTakes = (eventPattern: string | undefined, detailType: string): boolean =>
  Option.match(decodePattern(eventPattern ?? ""), {
    onNone: () => false,
    onSome: (pattern) => pattern["detail-type"] === undefined || pattern["detail-type"].includes(detailType)
  })

/**
 * The pattern of a rule narrowed to one recovery point: AWS Backup events name it in
 * `resources`, the pipeline's own events in `detail.correlationId`.
 */
export const narrowToRecoveryPoint = (eventPattern: string, recoveryPointArn: string): string => {
  const pattern: Record<string, unknown> = JSON.parse(eventPattern)
  return JSON.stringify({ ...pattern, $or: [{ resources: [recoveryPointArn] }, { detail: { correlationId: [recoveryPointArn] } }] })
}

const busArnOf = (busName: string) =>
  Effect.gen(function* () {
    const stack = yield* Stack
    if (Option.isSome(stack.busArn)) return stack.busArn.value
    const events = yield* EventBridge
    const bus = yield* awsCall("events:DescribeEventBus", (abortSignal) => events.send(new DescribeEventBusCommand({ Name: busName }), { abortSignal }))
    return bus.Arn ?? ""
  })

/** The bus's archive: the one the stack names, else the one whose source is the bus. */
const archiveArnOf = (busArn: string) =>
  Effect.gen(function* () {
    const stack = yield* Stack
    const events = yield* EventBridge
    if (Option.isSome(stack.archiveName)) {
      const name = stack.archiveName.value
      const archive = yield* awsCall("events:DescribeArchive", (abortSignal) => events.send(new DescribeArchiveCommand({ ArchiveName: name }), { abortSignal }))
      return archive.ArchiveArn ?? ""
    }
    const listed = yield* awsCall("events:ListArchives", (abortSignal) => events.send(new ListArchivesCommand({ EventSourceArn: busArn }), { abortSignal }))
    const archive = (listed.Archives ?? [])[0]
    if (archive?.ArchiveName === undefined) return yield* new OperationFailed({ message: `the bus ${busArn} has no archive to replay` })
    const described = yield* awsCall("events:DescribeArchive", (abortSignal) =>
      events.send(new DescribeArchiveCommand({ ArchiveName: archive.ArchiveName }), { abortSignal })
    )
    return described.ArchiveArn ?? ""
  })

/** Every rule on the bus, page by page; the rules EventBridge manages (archives) are left out. */
const rulesOf = (busName: string) =>
  Effect.gen(function* () {
    const events = yield* EventBridge
    const rules: Array<Rule> = []
    let token: string | undefined
    do {
      const page = yield* awsCall("events:ListRules", (abortSignal) =>
        events.send(new ListRulesCommand({ EventBusName: busName, NextToken: token }), { abortSignal })
      )
      rules.push(...(page.Rules ?? []).filter((rule) => rule.ManagedBy === undefined && !(rule.Name ?? "").startsWith("Events-Archive-")))
      token = page.NextToken
    } while (token !== undefined)
    return rules
  })

/**
 * Copies of the given rules whose patterns also name the recovery point, with the same targets,
 * deleted when the scope closes. In AWS a replay only reaches the rules in FilterArns, so these
 * copies are how a replay is narrowed to one recovery point. (Live events that match them while
 * the replay runs arrive twice; the ledger makes the second a no-op.)
 */
const narrowedRules = (busName: string, rules: ReadonlyArray<Rule>, recoveryPointArn: string, suffix: string) =>
  Effect.forEach(rules, (rule) =>
    Effect.acquireRelease(
      Effect.gen(function* () {
        const events = yield* EventBridge
        const name = `${(rule.Name ?? "rule").slice(0, 48)}-replay-${suffix}`
        const listed = yield* awsCall("events:ListTargetsByRule", (abortSignal) =>
          events.send(new ListTargetsByRuleCommand({ Rule: rule.Name, EventBusName: busName }), { abortSignal })
        )
        const created = yield* awsCall("events:PutRule", (abortSignal) =>
          events.send(
            new PutRuleCommand({
              Name: name,
              EventBusName: busName,
              EventPattern: narrowToRecoveryPoint(rule.EventPattern ?? "{}", recoveryPointArn),
              Description: `replay of ${recoveryPointArn} (temporary)`
            }),
            { abortSignal }
          )
        )
        const targets: Array<Target> = listed.Targets ?? []
        if (targets.length > 0) {
          yield* awsCall("events:PutTargets", (abortSignal) => events.send(new PutTargetsCommand({ Rule: name, EventBusName: busName, Targets: targets }), { abortSignal }))
        }
        return { name, arn: created.RuleArn ?? "", targetIds: targets.flatMap((target) => (target.Id === undefined ? [] : [target.Id])) }
      }),
      (made) =>
        Effect.gen(function* () {
          const events = yield* EventBridge
          if (made.targetIds.length > 0) {
            yield* awsCall("events:RemoveTargets", (abortSignal) =>
              events.send(new RemoveTargetsCommand({ Rule: made.name, EventBusName: busName, Ids: made.targetIds }), { abortSignal })
            )
          }
          yield* awsCall("events:DeleteRule", (abortSignal) => events.send(new DeleteRuleCommand({ Name: made.name, EventBusName: busName }), { abortSignal }))
        }).pipe(Effect.catchTag("AwsError", (error) => Console.error(`could not delete the temporary rule ${made.name}: ${error.code}: ${error.message}`)))
    )
  )

/** The rules a filtered replay goes to, or none for every rule. */
const filterArns = (busName: string, request: ReplayRequest, suffix: string) =>
  Effect.gen(function* () {
    if (request.detailType === undefined && request.recoveryPoint === undefined) return Option.none<ReadonlyArray<string>>()
    const all = yield* rulesOf(busName)
    const detailType = request.detailType
    const selected = detailType === undefined ? all : all.filter((rule) => ruleTakes(rule.EventPattern, detailType))
    if (selected.length === 0) {
      return yield* new UsageError({ message: `no rule on the bus ${busName} takes detail-type "${detailType ?? ""}"`, command: "replay" })
    }
    if (request.recoveryPoint === undefined) return Option.some(selected.map((rule) => rule.Arn ?? ""))
    const narrowed = yield* narrowedRules(busName, selected, request.recoveryPoint, suffix)
    return Option.some(narrowed.map((rule) => rule.arn))
  })

const FINISHED = new Set(["COMPLETED", "FAILED", "CANCELLED"])

/** `replay`: StartReplay of the bus archive into the bus, then DescribeReplay until it ends. */
export const replayCommand = (request: ReplayRequest) =>
  Effect.scoped(
    Effect.gen(function* () {
      const events = yield* EventBridge
      const progress = yield* Progress
      const busName = yield* requireName("busName")
      const busArn = yield* busArnOf(busName)
      const archiveArn = yield* archiveArnOf(busArn)
      const now = yield* Clock.currentTimeMillis
      const suffix = randomBytes(3).toString("hex")
      const name = `backup-actions-${new Date(now).toISOString().replace(/[-:.]/g, "")}-${suffix}`
      const filters = yield* filterArns(busName, request, suffix)
      yield* awsCall("events:StartReplay", (abortSignal) =>
        events.send(
          new StartReplayCommand({
            ReplayName: name,
            EventSourceArn: archiveArn,
            EventStartTime: request.from,
            EventEndTime: request.to,
            Destination: { Arn: busArn, ...Option.match(filters, { onNone: () => ({}), onSome: (arns) => ({ FilterArns: [...arns] }) }) }
          }),
          { abortSignal }
        )
      )
      yield* Console.error(`replay ${name} of ${archiveArn} into ${busName} started`)
      const window = request.to.getTime() - request.from.getTime()
      const meter = yield* progress.meter(`replay ${name}`, window)
      const described = yield* awsCall("events:DescribeReplay", (abortSignal) => events.send(new DescribeReplayCommand({ ReplayName: name }), { abortSignal })).pipe(
        Effect.tap((replay) => Effect.sync(() => meter.update(Math.max(0, (replay.EventLastReplayedTime?.getTime() ?? request.from.getTime()) - request.from.getTime())))),
        Effect.repeat(
          Schedule.spaced(Duration.seconds(2)).pipe(
            Schedule.whileInput((replay: DescribeReplayCommandOutput) => !FINISHED.has(replay.State ?? "")),
            Schedule.passthrough
          )
        )
      )
      meter.finish()
      if (described.State !== "COMPLETED") {
        return yield* new CheckFailed({ summary: `replay ${name} ended ${described.State ?? "in an unknown state"}`, problems: [described.StateReason ?? "no reason given"] })
      }
      yield* Console.log(`replay ${name} completed: events from ${request.from.toISOString()} to ${request.to.toISOString()} replayed into ${busName}`)
    })
  )
