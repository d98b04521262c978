import { ReplicaCompleted } from "@backup-actions/contracts"
import { outboxRelay, serviceProcess, visibilityFromEnv } from "@backup-actions/consumer"
import { subscriptions } from "./service"

/**
 * The sharer's process. A replica spends most of its time waiting for AWS to finish the copy,
 * so the sharer takes a whole batch (10 messages, the SQS maximum) at once; CopySlots keeps the
 * copies per destination within the AWS quota. Beside the consumer, the outbox relay announces
 * outcomes whose worker died before announcing them.
 */
export const sharerProcess = serviceProcess(subscriptions, { service: "sharer", concurrency: 10, visibilityTimeoutSeconds: visibilityFromEnv(120) }, [
  outboxRelay(ReplicaCompleted)
])
