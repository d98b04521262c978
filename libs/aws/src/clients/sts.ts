import { STSClient } from "@aws-sdk/client-sts"
import { Context } from "effect"
import { clientOptions, scopedClient } from "../clients"

export class Sts extends Context.Tag("backup-actions/Sts")<Sts, STSClient>() {
  static readonly Live = scopedClient(Sts, (settings) => new STSClient(clientOptions(settings)))
}
