import { runServiceMain, visibilityFromEnv } from "@backup-actions/consumer"
import { RestorerLive, subscriptions } from "./service"

// The sweep of leftovers comes as a scheduled "Sweep Due" command, as in AWS.
runServiceMain(subscriptions, { service: "restorer", concurrency: 4, visibilityTimeoutSeconds: visibilityFromEnv(120) }, RestorerLive)
