import { runServiceMain, visibilityFromEnv } from "@backup-actions/consumer"
import { ExporterLive, subscriptions } from "./service"

runServiceMain(subscriptions, { service: "exporter", concurrency: 4, visibilityTimeoutSeconds: visibilityFromEnv(120) }, ExporterLive)
