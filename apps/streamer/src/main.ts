import { runServiceMain } from "@backup-actions/consumer"
import { StreamerLive, subscriptions } from "./service"

runServiceMain(subscriptions, { service: "streamer", concurrency: 2, visibilityTimeoutSeconds: 120 }, StreamerLive)
