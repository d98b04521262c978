import { SQSClient } from "@aws-sdk/client-sqs"
import { Context } from "effect"
import { clientOptions, scopedClient } from "../clients"

export class Sqs extends Context.Tag("backup-actions/Sqs")<Sqs, SQSClient>() {
  static readonly Live = scopedClient(Sqs, (settings) => new SQSClient(clientOptions(settings)))
}
