import { RestoreCompleted } from "@backup-actions/contracts"
import { outboxRelay, runServiceMain, visibilityFromEnv } from "@backup-actions/consumer"
import { RestorerLive, subscriptions } from "./service"

// The sweep of leftovers comes as a scheduled "Sweep Due" command, as in AWS. Beside the
// consumer, the outbox relay announces outcomes whose worker died before announcing them.
runServiceMain(subscriptions, { service: "restorer", concurrency: 4, visibilityTimeoutSeconds: visibilityFromEnv(120) }, RestorerLive, [outboxRelay(RestoreCompleted)])
