import { runServiceMain, visibilityFromEnv } from "@backup-actions/consumer"
import { ReporterLive, subscriptions } from "./service"

runServiceMain(subscriptions, { service: "reporter", concurrency: 4, visibilityTimeoutSeconds: visibilityFromEnv(60) }, ReporterLive)
