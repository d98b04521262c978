import { assert, describe, it } from "@effect/vitest"
import {
  DeleteRuleCommand,
  DescribeArchiveCommand,
  DescribeReplayCommand,
  EventBridgeClient,
  ListRulesCommand,
  ListTargetsByRuleCommand,
  PutRuleCommand,
  PutTargetsCommand,
  RemoveTargetsCommand,
  StartReplayCommand
} from "@aws-sdk/client-eventbridge"
import { mockClient } from "aws-sdk-client-mock"
import { Effect, Layer, Option } from "effect"
import { EventBridge } from "@backup-actions/aws"
import { Progress } from "./progress"
import { narrowToRecoveryPoint, replayCommand, ruleTakes } from "./replay"
import { Stack } from "./stack"

const BUS_ARN = "arn:aws:events:us-east-1:123456789012:event-bus/backup-actions-bus"
const ARCHIVE_ARN = "arn:aws:events:us-east-1:123456789012:archive/backup-actions-archive"
const RECOVERY_POINT = "arn:aws:ec2:us-east-1::snapshot/snap-0123456789abcdef0"
const rule = (name: string, detailType: string) => ({
  Name: name,
  Arn: `arn:aws:events:us-east-1:123456789012:rule/backup-actions-bus/${name}`,
  EventPattern: JSON.stringify({ source: ["backup-actions"], "detail-type": [detailType] })
})
const RULES = [rule("backup-actions-reporter-archive-completed", "Archive Completed"), rule("backup-actions-streamer-restore-completed", "Restore Completed")]
const window = { from: new Date("2026-11-22T10:00:00Z"), to: new Date("2026-11-22T11:00:00Z") }

/** An EventBridge client whose answers are set per command; the stack names the bus and its archive. */
const mockedEventBridge = (state: "COMPLETED" | "FAILED" = "COMPLETED") => {
  const client = new EventBridgeClient({ region: "us-east-1" })
  const mock = mockClient(client)
  mock.on(DescribeArchiveCommand).resolves({ ArchiveArn: ARCHIVE_ARN })
  mock.on(ListRulesCommand).resolves({ Rules: RULES })
  mock.on(ListTargetsByRuleCommand).resolves({ Targets: [{ Id: "reporter-queue", Arn: "arn:aws:sqs:us-east-1:123456789012:backup-actions-reporter" }] })
  mock.on(PutRuleCommand).callsFake(async (input: { Name: string }) => ({ RuleArn: `arn:aws:events:us-east-1:123456789012:rule/backup-actions-bus/${input.Name}` }))
  mock.on(PutTargetsCommand).resolves({ FailedEntryCount: 0 })
  mock.on(RemoveTargetsCommand).resolves({ FailedEntryCount: 0 })
  mock.on(DeleteRuleCommand).resolves({})
  mock.on(StartReplayCommand).resolves({ State: "STARTING" })
  mock.on(DescribeReplayCommand).resolves({ State: state, ...(state === "FAILED" ? { StateReason: "the archive is being deleted" } : {}) })
  const layer = Layer.mergeAll(
    Layer.succeed(EventBridge, client),
    Progress.silent,
    Layer.succeed(Stack, {
      region: "us-east-1",
      endpoint: Option.none(),
      busName: Option.some("backup-actions-bus"),
      busArn: Option.some(BUS_ARN),
      archiveName: Option.some("backup-actions-archive"),
      artifactBucket: Option.none(),
      ledgerTable: Option.none(),
      origin: "test"
    })
  )
  return { mock, layer }
}

// The emulator replays every archived event to every rule whatever FilterArns says, so the filters are checked as exact requests.
describe("replay", () => {
  it.effect("replays the whole window into the bus without filters when none are asked for", () =>
    Effect.gen(function* () {
      // Prepare
      const { mock, layer } = mockedEventBridge()
      // Act
      yield* replayCommand({ ...window, detailType: undefined, recoveryPoint: undefined }).pipe(Effect.provide(layer))
      // Assess
      const input = mock.commandCalls(StartReplayCommand)[0]?.args[0].input
      assert.strictEqual(input?.EventSourceArn, ARCHIVE_ARN)
      assert.deepStrictEqual(input?.Destination, { Arn: BUS_ARN })
      assert.deepStrictEqual([input?.EventStartTime, input?.EventEndTime], [window.from, window.to])
      assert.match(input?.ReplayName ?? "", /^backup-actions-\d{8}T\d+Z-[0-9a-f]{6}$/)
      assert.strictEqual(mock.commandCalls(ListRulesCommand).length, 0)
    })
  )

  it.effect("sends a --type replay only to the bus's rules that take that detail-type", () =>
    Effect.gen(function* () {
      // Prepare
      const { mock, layer } = mockedEventBridge()
      // Act
      yield* replayCommand({ ...window, detailType: "Archive Completed", recoveryPoint: undefined }).pipe(Effect.provide(layer))
      // Assess
      assert.deepStrictEqual(mock.commandCalls(StartReplayCommand)[0]?.args[0].input.Destination, { Arn: BUS_ARN, FilterArns: [RULES[0]?.Arn ?? ""] })
    })
  )

  it.effect("narrows a --recovery-point replay through temporary copies of the rules, deleted afterwards", () =>
    Effect.gen(function* () {
      // Prepare
      const { mock, layer } = mockedEventBridge()
      // Act
      yield* replayCommand({ ...window, detailType: "Archive Completed", recoveryPoint: RECOVERY_POINT }).pipe(Effect.provide(layer))
      // Assess
      const created = mock.commandCalls(PutRuleCommand)[0]?.args[0].input
      assert.match(created?.Name ?? "", /^backup-actions-reporter-archive-completed-replay-[0-9a-f]{6}$/)
      assert.deepStrictEqual(JSON.parse(created?.EventPattern ?? "{}"), {
        source: ["backup-actions"],
        "detail-type": ["Archive Completed"],
        $or: [{ resources: [RECOVERY_POINT] }, { detail: { correlationId: [RECOVERY_POINT] } }]
      })
      assert.deepStrictEqual(mock.commandCalls(PutTargetsCommand)[0]?.args[0].input.Targets, [
        { Id: "reporter-queue", Arn: "arn:aws:sqs:us-east-1:123456789012:backup-actions-reporter" }
      ])
      assert.deepStrictEqual(mock.commandCalls(StartReplayCommand)[0]?.args[0].input.Destination?.FilterArns, [
        `arn:aws:events:us-east-1:123456789012:rule/backup-actions-bus/${created?.Name}`
      ])
      assert.deepStrictEqual(mock.commandCalls(RemoveTargetsCommand)[0]?.args[0].input.Ids, ["reporter-queue"])
      assert.strictEqual(mock.commandCalls(DeleteRuleCommand)[0]?.args[0].input.Name, created?.Name)
    })
  )

  it.effect("fails with the replay's reason when it ends FAILED", () =>
    Effect.gen(function* () {
      // Prepare
      const { layer } = mockedEventBridge("FAILED")
      // Act
      const error = yield* Effect.flip(replayCommand({ ...window, detailType: undefined, recoveryPoint: undefined }).pipe(Effect.provide(layer)))
      // Assess
      assert.strictEqual(error._tag, "CheckFailed")
      assert.deepStrictEqual(error._tag === "CheckFailed" ? error.problems : [], ["the archive is being deleted"])
    })
  )

  it.effect("refuses a --type no rule of the bus takes", () =>
    Effect.gen(function* () {
      // Prepare
      const { mock, layer } = mockedEventBridge()
      // Act
      const error = yield* Effect.flip(replayCommand({ ...window, detailType: "Export Completed", recoveryPoint: undefined }).pipe(Effect.provide(layer)))
      // Assess
      assert.strictEqual(error._tag, "UsageError")
      assert.strictEqual(error.message, 'no rule on the bus backup-actions-bus takes detail-type "Export Completed"')
      assert.strictEqual(mock.commandCalls(StartReplayCommand).length, 0)
    })
  )

  it("reads which detail-types a rule takes and narrows a pattern to one recovery point", () => {
    // Act
    const takes = [ruleTakes(RULES[0]?.EventPattern, "Archive Completed"), ruleTakes(RULES[0]?.EventPattern, "Restore Completed"), ruleTakes('{"source":["aws.backup"]}', "x")]
    const narrowed = JSON.parse(narrowToRecoveryPoint('{"source":["aws.backup"]}', RECOVERY_POINT))
    // Assess
    assert.deepStrictEqual(takes, [true, false, true])
    assert.deepStrictEqual(narrowed.$or[0], { resources: [RECOVERY_POINT] })
  })
})
