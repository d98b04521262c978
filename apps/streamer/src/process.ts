import { Effect } from "effect"
import { ArchiveCompleted } from "@backup-actions/contracts"
import { ServiceSettings } from "@backup-actions/config"
import { outboxRelay, serviceProcess, visibilityFromEnv } from "@backup-actions/consumer"
import { sweepAtStart } from "./leftovers"
import { subscriptions } from "./service"

/**
 * The streamer's process: before its first message, what a killed predecessor left on the host
 * (mounts, loop and device-mapper devices, scratch) is removed; then its consumer and, beside
 * it, the outbox relay that announces outcomes whose worker died before announcing them.
 */
export const streamerProcess = serviceProcess(
  subscriptions,
  { service: "streamer", concurrency: 2, visibilityTimeoutSeconds: visibilityFromEnv(120) },
  [outboxRelay(ArchiveCompleted)],
  Effect.flatMap(ServiceSettings, (settings) => sweepAtStart(settings.workDir))
)
