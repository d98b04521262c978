import { Effect } from "effect"
import { mountDisk } from "./mount"

/*
 * A stand-in for a streamer in the middle of an archive: mounts the disk given as the first
 * argument under the work directory given as the second, says so on stdout, and holds the
 * mounts until it is killed. The leftovers test kills it with SIGKILL, so nothing is released.
 */
const [device, workDir] = process.argv.slice(2)
if (device === undefined || workDir === undefined) throw new Error("usage: test-hold-mounts <device> <work directory>")

Effect.runFork(
  Effect.scoped(
    Effect.gen(function* () {
      const mounted = yield* mountDisk(device, workDir)
      yield* Effect.sync(() => process.stdout.write(`${JSON.stringify({ filesystems: mounted.filesystems.length })}\n`))
      return yield* Effect.never
    })
  ).pipe(Effect.tapError((error) => Effect.sync(() => process.stderr.write(`${error.reason}\n`))))
)
