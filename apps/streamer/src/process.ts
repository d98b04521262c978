import { ArchiveCompleted } from "@backup-actions/contracts"
import { outboxRelay, serviceProcess, visibilityFromEnv } from "@backup-actions/consumer"
import { subscriptions } from "./service"

/** The streamer's process: its consumer and, beside it, the outbox relay that announces outcomes whose worker died before announcing them. */
export const streamerProcess = serviceProcess(subscriptions, { service: "streamer", concurrency: 2, visibilityTimeoutSeconds: visibilityFromEnv(120) }, [
  outboxRelay(ArchiveCompleted)
])
