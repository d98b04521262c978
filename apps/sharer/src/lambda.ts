import { makeLambdaHandler } from "@backup-actions/consumer"
import { SharerLive, subscriptions } from "./service"

/** The Lambda entry: the SQS event source mapping delivers the queue's messages here. */
export const handler = makeLambdaHandler(subscriptions, { service: "sharer", concurrency: 10, visibilityTimeoutSeconds: 900 }, SharerLive)
