import { SNSClient } from "@aws-sdk/client-sns"
import { Context } from "effect"
import { clientOptions, scopedClient } from "../clients"

export class Sns extends Context.Tag("backup-actions/Sns")<Sns, SNSClient>() {
  static readonly Live = scopedClient(Sns, (settings) => new SNSClient(clientOptions(settings)))
}
