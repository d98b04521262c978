import { makeLambdaHandler } from "@backup-actions/consumer"
import { RestorerLive, subscriptions } from "./service"

/** The Lambda entry: the SQS event source mapping delivers the queue's messages here. */
export const handler = makeLambdaHandler(subscriptions, { service: "restorer", concurrency: 4, visibilityTimeoutSeconds: 900 }, RestorerLive)
