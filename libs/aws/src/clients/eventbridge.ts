import { EventBridgeClient } from "@aws-sdk/client-eventbridge"
import { Context } from "effect"
import { clientOptions, scopedClient } from "../clients"

export class EventBridge extends Context.Tag("backup-actions/EventBridge")<EventBridge, EventBridgeClient>() {
  static readonly Live = scopedClient(EventBridge, (settings) => new EventBridgeClient(clientOptions(settings)))
}
