import { Effect } from "effect"
import type { RestoreTarget } from "../args"
import { UsageError } from "../errors"
import type { S3Location } from "../s3-url"
import { restoreSnapshotCommand } from "./snapshot"
import { restoreTreeCommand } from "./tree"

/** `restore`: one kind of artifact per target, each in its own module. */
export const restoreCommand = (archive: S3Location, target: RestoreTarget) => {
  switch (target._tag) {
    case "Directory":
      return restoreTreeCommand(archive, target.directory)
    case "Snapshot":
      return restoreSnapshotCommand(archive)
    case "Database":
      return Effect.fail(new UsageError({ message: "--to-database is not available yet", command: "restore" }))
    case "Table":
      return Effect.fail(new UsageError({ message: "--to-table is not available yet", command: "restore" }))
    case "Image":
      return Effect.fail(new UsageError({ message: "--to-image is not available yet", command: "restore" }))
  }
}
