import { serviceProcess, visibilityFromEnv } from "@backup-actions/consumer"
import { subscriptions } from "./service"

/** The reporter's process: its consumer, nothing beside it. */
export const reporterProcess = serviceProcess(subscriptions, { service: "reporter", concurrency: 4, visibilityTimeoutSeconds: visibilityFromEnv(60) })
