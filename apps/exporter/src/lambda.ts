import { makeLambdaHandler } from "@backup-actions/consumer"
import { ExporterLive, subscriptions } from "./service"

/** The Lambda entry: the SQS event source mapping delivers the queue's messages here. */
export const handler = makeLambdaHandler(subscriptions, { service: "exporter", concurrency: 4, visibilityTimeoutSeconds: 900 }, ExporterLive)
