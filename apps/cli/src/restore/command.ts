import type { Effect, Layer } from "effect"
import type { RestoreTarget } from "../args"
import type { CliError } from "../errors"
import type { Progress } from "../progress"
import type { S3Location } from "../s3-url"
import type { stackLayer } from "../stack"
import { restoreDatabaseCommand } from "./database"
import { restoreImageCommand } from "./image"
import { restoreSnapshotCommand } from "./snapshot"
import { restoreTableCommand } from "./table"
import { restoreTreeCommand } from "./tree"

/** `restore`: one kind of artifact per target, each in its own module. */
export const restoreCommand = (
  archive: S3Location,
  target: RestoreTarget
): Effect.Effect<void, CliError, Layer.Layer.Success<ReturnType<typeof stackLayer>> | Progress> => {
  switch (target._tag) {
    case "Directory":
      return restoreTreeCommand(archive, target.directory)
    case "Snapshot":
      return restoreSnapshotCommand(archive, target.kmsKeyId)
    case "Database":
      return restoreDatabaseCommand(archive, target.url)
    case "Table":
      return restoreTableCommand(archive, target.table)
    case "Image":
      return restoreImageCommand(archive, target.name)
  }
}
