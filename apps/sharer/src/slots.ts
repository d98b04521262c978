import { Context, Effect, Layer } from "effect"

export interface CopySlotsShape {
  /**
   * Runs the effect while holding one of the destination's slots: a copy holds its slot from
   * CopySnapshot until it completes, so no more than `limit` are in flight there. The first
   * copy to a destination sets its number of slots (rules that share a destination should
   * agree on maxConcurrentCopies).
   */
  readonly withSlot: <A, E, R>(destination: string, limit: number, effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
}

/**
 * AWS allows a limited number of concurrent snapshot copies per destination region (20 by
 * default); more are refused with ResourceLimitExceeded. The sharer keeps below that itself
 * and lets the rest wait their turn, so that none is refused and none is lost.
 */
export class CopySlots extends Context.Tag("backup-actions/sharer/CopySlots")<CopySlots, CopySlotsShape>() {
  static readonly Live = Layer.sync(CopySlots, () => {
    const semaphores = new Map<string, Effect.Semaphore>()
    const semaphoreFor = (destination: string, limit: number): Effect.Semaphore => {
      const existing = semaphores.get(destination)
      if (existing !== undefined) return existing
      const semaphore = Effect.unsafeMakeSemaphore(limit)
      semaphores.set(destination, semaphore)
      return semaphore
    }
    return {
      withSlot: (destination, limit, effect) => Effect.suspend(() => semaphoreFor(destination, limit).withPermits(1)(effect))
    }
  })
}

/** The key copies to one account and region share their slots under. */
export const destinationKey = (account: string, region: string): string => `${account}/${region}`
