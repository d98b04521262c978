import { Deferred, Effect, Option, Queue, type Scope } from "effect"

/**
 * Runs submitted work concurrently and hands back the results in submission order.
 * At most `capacity` results are pending or unread at once: `submit` waits when the
 * reader falls behind, which is what keeps memory bounded along a pipeline.
 */
export interface OrderedPool<A, E> {
  readonly submit: (work: Effect.Effect<A, E>) => Effect.Effect<void>
  /** Marks the end; `next` then returns None once every result is read. */
  readonly end: Effect.Effect<void>
  readonly next: Effect.Effect<Option.Option<A>, E>
}

export const makeOrderedPool = <A, E>(capacity: number): Effect.Effect<OrderedPool<A, E>, never, Scope.Scope> =>
  Effect.gen(function* () {
    const scope = yield* Effect.scope
    const pending = yield* Queue.bounded<Option.Option<Deferred.Deferred<A, E>>>(capacity)
    return {
      submit: (work) =>
        Effect.gen(function* () {
          const result = yield* Deferred.make<A, E>()
          yield* Queue.offer(pending, Option.some(result))
          yield* Effect.forkIn(Effect.exit(work).pipe(Effect.flatMap((exit) => Deferred.done(result, exit))), scope)
        }),
      end: Queue.offer(pending, Option.none()).pipe(Effect.asVoid),
      next: Effect.flatMap(Queue.take(pending), (slot) =>
        Option.match(slot, {
          onNone: () => Effect.succeed(Option.none<A>()),
          onSome: (result) => Effect.map(Deferred.await(result), Option.some)
        })
      )
    }
  })
