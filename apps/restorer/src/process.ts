import { RestoreCompleted } from "@backup-actions/contracts"
import { outboxRelay, serviceProcess, visibilityFromEnv } from "@backup-actions/consumer"
import { subscriptions } from "./service"

/**
 * The restorer's process: its consumer and, beside it, the outbox relay that announces outcomes
 * whose worker died before announcing them. The sweep of leftovers comes as a scheduled
 * "Sweep Due" command, as in AWS.
 */
export const restorerProcess = serviceProcess(subscriptions, { service: "restorer", concurrency: 4, visibilityTimeoutSeconds: visibilityFromEnv(120) }, [
  outboxRelay(RestoreCompleted)
])
