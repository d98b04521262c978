import { SSMClient } from "@aws-sdk/client-ssm"
import { Context } from "effect"
import { clientOptions, scopedClient } from "../clients"

export class Ssm extends Context.Tag("backup-actions/Ssm")<Ssm, SSMClient>() {
  static readonly Live = scopedClient(Ssm, (settings) => new SSMClient(clientOptions(settings)))
}
