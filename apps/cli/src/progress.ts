import { Context, Effect, Layer } from "effect"

/** Where progress goes: one line rewritten in place on a terminal, a line now and then otherwise. */
export interface ProgressShape {
  readonly enabled: boolean
  /** A meter for one long piece of work; `total` is undefined when it is not known. */
  readonly meter: (label: string, total: number | undefined) => Effect.Effect<Meter>
}

/** Called from stream callbacks, so plain functions; they never throw. */
export interface Meter {
  readonly update: (done: number) => void
  readonly finish: () => void
}

const MiB = 1024 * 1024

/** `12.0 MiB / 1.0 GiB (1%) at 80.1 MiB/s`: what a meter shows. */
export const describeProgress = (done: number, total: number | undefined, elapsedMs: number): string => {
  const size = (bytes: number) => (bytes >= 1024 * MiB ? `${(bytes / (1024 * MiB)).toFixed(1)} GiB` : `${(bytes / MiB).toFixed(1)} MiB`)
  const rate = elapsedMs <= 0 ? 0 : done / MiB / (elapsedMs / 1000)
  const share = total === undefined || total <= 0 ? "" : ` (${Math.min(100, Math.floor((done / total) * 100))}%)`
  return `${size(done)}${total === undefined ? "" : ` / ${size(total)}`}${share} at ${rate.toFixed(1)} MiB/s`
}

export class Progress extends Context.Tag("backup-actions/cli/Progress")<Progress, ProgressShape>() {
  /** Progress on the given stream when asked for, or when it is a terminal. */
  static readonly layer = (stream: NodeJS.WriteStream, asked: boolean) =>
    Layer.succeed(Progress, {
      enabled: asked || stream.isTTY === true,
      meter: (label, total) =>
        Effect.gen(function* () {
          const enabled = asked || stream.isTTY === true
          const interactive = stream.isTTY === true
          const clock = yield* Effect.clock
          const started = clock.unsafeCurrentTimeMillis()
          let shownAt = 0
          let last = 0
          const show = (done: number, final: boolean) => {
            last = done
            if (!enabled) return
            const now = clock.unsafeCurrentTimeMillis()
            // A terminal line is redrawn five times a second; a log gets a line every five seconds.
            if (!final && now - shownAt < (interactive ? 200 : 5_000)) return
            shownAt = now
            const text = `${label}: ${describeProgress(done, total, now - started)}`
            stream.write(interactive ? `\r\u001b[2K${text}${final ? "\n" : ""}` : `${text}\n`)
          }
          const meter: Meter = { update: (done) => show(done, false), finish: () => show(last, true) }
          return meter
        })
    })

  /** No progress at all (tests of the commands' output). */
  static readonly silent = Layer.succeed(Progress, {
    enabled: false,
    meter: () => Effect.succeed({ update: () => undefined, finish: () => undefined })
  })
}
