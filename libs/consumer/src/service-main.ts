import { Cause, Effect, Exit, Fiber, Layer, Logger, LogLevel } from "effect"
import type { Subscription } from "@backup-actions/contracts"
import { runConsumer, type ConsumerOptions } from "./consumer"
import type { Sqs } from "@backup-actions/aws"
import type { ServiceSettings } from "@backup-actions/config"

/** JSON logs when BACKUP_ACTIONS_LOG_FORMAT=json (CloudWatch), logfmt otherwise. */
export const loggerFromEnv = (): Layer.Layer<never> =>
  Layer.merge(
    process.env["BACKUP_ACTIONS_LOG_FORMAT"] === "json" ? Logger.json : Logger.logFmt,
    Logger.minimumLogLevel(process.env["BACKUP_ACTIONS_LOG_LEVEL"] === "debug" ? LogLevel.Debug : LogLevel.Info)
  )

/** The visibility timeout from BACKUP_ACTIONS_VISIBILITY_SECONDS, else the given default. */
export const visibilityFromEnv = (fallback: number): number => {
  const configured = Number(process.env["BACKUP_ACTIONS_VISIBILITY_SECONDS"])
  return Number.isInteger(configured) && configured > 0 ? configured : fallback
}

/**
 * Runs a service's consumer as a process: polls until SIGTERM or SIGINT, then stops
 * taking messages and lets the fiber's finalizers run (a message being handled returns
 * to its queue and its step resumes elsewhere).
 */
export const runServiceMain = <R, E, LE>(
  subscriptions: ReadonlyArray<Subscription<R, E>>,
  options: ConsumerOptions,
  layer: Layer.Layer<NoInfer<R> | Sqs | ServiceSettings, LE>,
  /** Periodic work beside the consumer (a sweeper), run with the same layer. */
  background: ReadonlyArray<Effect.Effect<void, never, NoInfer<R> | Sqs | ServiceSettings>> = [],
  /** Work done once before the first message is taken (what a killed predecessor left, removed). */
  startup: Effect.Effect<void, never, NoInfer<R> | Sqs | ServiceSettings> = Effect.void
): void => {
  const consumer = runConsumer(subscriptions, options)
  const program = startup.pipe(
    Effect.zipRight(Effect.all([consumer, ...background], { concurrency: "unbounded", discard: true })),
    Effect.provide(layer),
    Effect.provide(loggerFromEnv()),
    Effect.tapErrorCause((cause) => Effect.logFatal(`${options.service} stopped`, Cause.pretty(cause)))
  )
  const fiber = Effect.runFork(program)
  const stop = () => {
    Effect.runFork(Fiber.interrupt(fiber))
  }
  process.once("SIGTERM", stop)
  process.once("SIGINT", stop)
  fiber.addObserver((exit) => {
    process.exitCode = Exit.isSuccess(exit) || Exit.isInterrupted(exit) ? 0 : 1
  })
}

/**
 * What a service's process runs: the consumer of its subscriptions with its options, and the
 * periodic work beside it. Described once, so that every assembly of the service (its
 * production entry, or any other) runs the same thing over its own layer.
 */
export interface ServiceProcess<R, E> {
  readonly subscriptions: ReadonlyArray<Subscription<R, E>>
  readonly options: ConsumerOptions
  /** Periodic work beside the consumer (an outbox relay, a sweeper), run with the same layer. */
  readonly background: ReadonlyArray<Effect.Effect<void, never, R | Sqs | ServiceSettings>>
  /** Work done once, before the consumer takes its first message. */
  readonly startup: Effect.Effect<void, never, R | Sqs | ServiceSettings>
}

/** A service's process description; its background work needs nothing its subscriptions do not. */
export const serviceProcess = <R, E>(
  subscriptions: ReadonlyArray<Subscription<R, E>>,
  options: ConsumerOptions,
  background: ReadonlyArray<Effect.Effect<void, never, NoInfer<R> | Sqs | ServiceSettings>> = [],
  startup: Effect.Effect<void, never, NoInfer<R> | Sqs | ServiceSettings> = Effect.void
): ServiceProcess<R, E> => ({ subscriptions, options, background, startup })

/** Runs a service's process (see `runServiceMain`) over the layer that gives it everything it needs. */
export const runServiceProcess = <R, E, LE>(service: ServiceProcess<R, E>, layer: Layer.Layer<NoInfer<R> | Sqs | ServiceSettings, LE>): void =>
  runServiceMain(service.subscriptions, service.options, layer, service.background, service.startup)
