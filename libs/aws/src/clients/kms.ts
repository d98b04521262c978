import { KMSClient } from "@aws-sdk/client-kms"
import { Context } from "effect"
import { clientOptions, scopedClient } from "../clients"

export class Kms extends Context.Tag("backup-actions/Kms")<Kms, KMSClient>() {
  static readonly Live = scopedClient(Kms, (settings) => new KMSClient(clientOptions(settings)))
}
