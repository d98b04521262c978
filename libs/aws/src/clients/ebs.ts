import { EBSClient } from "@aws-sdk/client-ebs"
import { Context } from "effect"
import { clientOptions, scopedClient } from "../clients"

export class Ebs extends Context.Tag("backup-actions/Ebs")<Ebs, EBSClient>() {
  static readonly Live = scopedClient(Ebs, (settings) => new EBSClient(clientOptions(settings)))
}
