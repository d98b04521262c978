import { BackupClient } from "@aws-sdk/client-backup"
import { Context } from "effect"
import { clientOptions, scopedClient } from "../clients"

export class Backup extends Context.Tag("backup-actions/Backup")<Backup, BackupClient>() {
  static readonly Live = scopedClient(Backup, (settings) => new BackupClient(clientOptions(settings)))
}
