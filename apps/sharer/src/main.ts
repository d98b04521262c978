import { ReplicaCompleted } from "@backup-actions/contracts"
import { outboxRelay, runServiceMain, visibilityFromEnv } from "@backup-actions/consumer"
import { SharerLive, subscriptions } from "./service"

// A replica spends most of its time waiting for AWS to finish the copy, so the sharer takes a
// whole batch (10 messages, the SQS maximum) at once; CopySlots keeps the copies per
// destination within the AWS quota. Beside the consumer, the outbox relay announces outcomes
// whose worker died before announcing them.
runServiceMain(subscriptions, { service: "sharer", concurrency: 10, visibilityTimeoutSeconds: visibilityFromEnv(120) }, SharerLive, [outboxRelay(ReplicaCompleted)])
