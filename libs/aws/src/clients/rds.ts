import { RDSClient } from "@aws-sdk/client-rds"
import { Context } from "effect"
import { clientOptions, scopedClient } from "../clients"

export class Rds extends Context.Tag("backup-actions/Rds")<Rds, RDSClient>() {
  static readonly Live = scopedClient(Rds, (settings) => new RDSClient(clientOptions(settings)))
}
