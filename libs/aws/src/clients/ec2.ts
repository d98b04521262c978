import { EC2Client } from "@aws-sdk/client-ec2"
import { Context } from "effect"
import { clientOptions, scopedClient } from "../clients"

export class Ec2 extends Context.Tag("backup-actions/Ec2")<Ec2, EC2Client>() {
  static readonly Live = scopedClient(Ec2, (settings) => new EC2Client(clientOptions(settings)))
}
