import { runServiceMain, visibilityFromEnv } from "@backup-actions/consumer"
import { StreamerLive, subscriptions } from "./service"

runServiceMain(subscriptions, { service: "streamer", concurrency: 2, visibilityTimeoutSeconds: visibilityFromEnv(120) }, StreamerLive)
