import { ArchiveCompleted } from "@backup-actions/contracts"
import { outboxRelay, runServiceMain, visibilityFromEnv } from "@backup-actions/consumer"
import { StreamerLive, subscriptions } from "./service"

// Beside the consumer, the outbox relay announces outcomes whose worker died before announcing them.
runServiceMain(subscriptions, { service: "streamer", concurrency: 2, visibilityTimeoutSeconds: visibilityFromEnv(120) }, StreamerLive, [outboxRelay(ArchiveCompleted)])
