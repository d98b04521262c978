import { makeLambdaHandler } from "@backup-actions/consumer"
import { ReporterLive, subscriptions } from "./service"

/** The Lambda entry: the SQS event source mapping delivers the queue's messages here. */
export const handler = makeLambdaHandler(subscriptions, { service: "reporter", concurrency: 4, visibilityTimeoutSeconds: 360 }, ReporterLive)
