/**
 * `npm start`: the local stack (emulator, provisioning, the forwarding leg of AWS Backup's
 * events, services) kept up until Ctrl-C, for driving by hand with the AWS CLI. Prints the
 * endpoint and the names, also written to .local/stack.json.
 */
import { join } from "node:path"
import { readFileSync } from "node:fs"
import { Effect, Either, Fiber, Schema } from "effect"
import { DEFAULT_POLICY, Policy, SCHEDULES, parsePolicy, scheduleExpression } from "@backup-actions/config"
import { EMULATOR_CREDENTIALS, EMULATOR_REGION, localStateDir } from "@backup-actions/local"
import { runLocalSchedules } from "./local-schedules"
import { startLocalStack } from "./stack"

/** The policy from BACKUP_ACTIONS_POLICY_FILE when given (refused with the reason if invalid), else volume mode for vault archive-volume and direct mode otherwise. */
const policyFile = process.env["BACKUP_ACTIONS_POLICY_FILE"]
const policy: Policy =
  policyFile === undefined
    ? {
        rules: [
          { name: "volume-mode", match: { resourceTypes: ["EBS"], vaults: ["archive-volume"] }, archive: { mode: "volume", compression: "zstd", deleteSourceAfterVerify: false } },
          ...DEFAULT_POLICY.rules
        ]
      }
    : Either.getOrElse(parsePolicy(readFileSync(policyFile, "utf8"), policyFile), (invalid) => {
        process.stderr.write(`${invalid.origin}: ${invalid.reason}\n`)
        process.exit(2)
      })

const local = await startLocalStack({ name: "start", policy: Schema.encodeSync(Policy)(policy) })
const { stack, emulator } = local
const endpoint = emulator.endpoint
const print = (text: string) => process.stdout.write(`${text}\n`)
print(`backup-actions local stack is up (Ctrl-C stops it)

  endpoint        ${endpoint}
  region          ${EMULATOR_REGION}
  credentials     AWS_ACCESS_KEY_ID=${EMULATOR_CREDENTIALS.accessKeyId} AWS_SECRET_ACCESS_KEY=${EMULATOR_CREDENTIALS.secretAccessKey}
  event bus       ${stack.busName} (archive ${stack.archiveName})
  AWS Backup in   the default bus -> ${stack.backupEventsQueue.url} -> ${stack.busName} (this process forwards, resources[] intact)
  bucket          ${stack.artifactBucket}
  ledger table    ${stack.ledgerTable}
  topic           ${stack.notificationTopicArn}
${Object.entries(stack.queues)
  .map(([service, queue]) => `  ${`${service} queue`.padEnd(15)} ${queue?.url ?? ""}\n  ${`${service} DLQ`.padEnd(15)} ${queue?.deadLetterUrl ?? ""}`)
  .join("\n")}
  described in    ${join(localStateDir(), "stack.json")}
  service logs    ${join(localStateDir(), "logs")}
  schedules       ${SCHEDULES.map((schedule) => `${schedule.name} ${scheduleExpression(schedule.cadence)}`).join(", ")} (fired by this process)

Try it (see README, "Drive it with the AWS CLI"):
  export AWS_ACCESS_KEY_ID=${EMULATOR_CREDENTIALS.accessKeyId} AWS_SECRET_ACCESS_KEY=${EMULATOR_CREDENTIALS.secretAccessKey} AWS_DEFAULT_REGION=${EMULATOR_REGION}
  aws --endpoint-url ${endpoint} ebs start-snapshot --volume-size 1
  aws --endpoint-url ${endpoint} s3 ls s3://${stack.artifactBucket} --recursive
  npm run cli -- status --stack ${join(localStateDir(), "stack.json")}    # the operator CLI, with the same credentials (docs/cli.md)
`)

const schedules = Effect.runFork(runLocalSchedules(stack, SCHEDULES).pipe(Effect.provide(local.clients)))

const stop = () => {
  Effect.runFork(Fiber.interrupt(schedules))
  print("stopping...")
  local.stop().then(
    () => process.exit(0),
    () => process.exit(1)
  )
}
process.once("SIGINT", stop)
process.once("SIGTERM", stop)
setInterval(() => undefined, 60_000)
