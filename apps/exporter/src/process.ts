import { Duration, Effect, Schedule } from "effect"
import { ExportCompleted } from "@backup-actions/contracts"
import { outboxRelay, serviceProcess, visibilityFromEnv } from "@backup-actions/consumer"
import { subscriptions } from "./service"
import { TEMPORARY_TABLE_MAX_AGE, sweepTemporaryTables } from "./temporary-tables"

/** Every hour, the temporary tables that a crashed export left behind. */
const temporaryTableSweep = sweepTemporaryTables(TEMPORARY_TABLE_MAX_AGE).pipe(
  Effect.tap((deleted) => (deleted.length === 0 ? Effect.void : Effect.logWarning(`deleted ${deleted.length} leftover temporary table(s): ${deleted.join(", ")}`))),
  Effect.catchAll((error) => Effect.logWarning(`temporary table sweep: ${error.operation} failed: ${error.message}`)),
  Effect.repeat(Schedule.spaced(Duration.hours(1))),
  Effect.asVoid
)

/**
 * The exporter's process. Beside the consumer: the outbox relay announces outcomes whose worker
 * died before announcing them, and the sweep removes temporary tables that a crash left behind.
 */
export const exporterProcess = serviceProcess(subscriptions, { service: "exporter", concurrency: 4, visibilityTimeoutSeconds: visibilityFromEnv(120) }, [
  outboxRelay(ExportCompleted),
  temporaryTableSweep
])
