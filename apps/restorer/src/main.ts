import { Duration, Effect, Schedule } from "effect"
import { runServiceMain, visibilityFromEnv } from "@backup-actions/consumer"
import { RestorerLive, subscriptions } from "./service"
import { sweepLeftovers } from "./volumes"

runServiceMain(subscriptions, { service: "restorer", concurrency: 4, visibilityTimeoutSeconds: visibilityFromEnv(120) }, RestorerLive, [
  // Restored volumes that a crash left behind are deleted once they are six hours old.
  sweepLeftovers(Duration.hours(6)).pipe(Effect.ignoreLogged, Effect.repeat(Schedule.spaced(Duration.minutes(15))), Effect.asVoid)
])
