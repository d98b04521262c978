import { SendMessageCommand } from "@aws-sdk/client-sqs"
import { Clock, Duration, Effect } from "effect"
import { Sqs, awsCall } from "@backup-actions/aws"
import { commandBody } from "@backup-actions/contracts"
import { millisUntilNext, type ScheduledCommand } from "@backup-actions/config"
import { EMULATOR_REGION, type ProvisionedStack } from "@backup-actions/local"

/** Sends a scheduled command to its service's queue now, as EventBridge Scheduler would. */
export const fireSchedule = (stack: ProvisionedStack, schedule: ScheduledCommand) =>
  Effect.gen(function* () {
    const sqs = yield* Sqs
    const queueUrl = stack.queues[schedule.service]?.url
    if (queueUrl === undefined) return
    const nowMs = yield* Clock.currentTimeMillis
    yield* awsCall("sqs:SendMessage", (abortSignal) =>
      sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: commandBody(schedule.command, schedule.detail, { region: EMULATOR_REGION, nowMs }) }), {
        abortSignal
      })
    )
    yield* Effect.logInfo(`fired schedule ${schedule.name}`)
  })

/** The emulator schedules nothing: fire each schedule at its times for as long as the stack runs. */
export const runLocalSchedules = (stack: ProvisionedStack, schedules: ReadonlyArray<ScheduledCommand>) =>
  Effect.forEach(
    schedules.filter((schedule) => stack.queues[schedule.service] !== undefined),
    (schedule) =>
      Effect.gen(function* () {
        const nowMs = yield* Clock.currentTimeMillis
        yield* Effect.sleep(Duration.millis(millisUntilNext(schedule.cadence, nowMs)))
        yield* fireSchedule(stack, schedule).pipe(Effect.catchAll((error) => Effect.logWarning(`schedule ${schedule.name}: ${error.message}`)))
      }).pipe(Effect.forever),
    { concurrency: "unbounded", discard: true }
  )
