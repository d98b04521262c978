import { Effect, Layer } from "effect"
import { Notifier, snsSubject, type NotifierShape } from "../notifier"

/** A message as the in-memory notifier kept it, its subject as SNS would take it. */
export interface SentNotification {
  readonly subject: string
  readonly message: string
}

/** A notifier that keeps what it is asked to send, in order: for tests of what the reporter announces. */
export const makeMemoryNotifier = () => {
  const sent: Array<SentNotification> = []
  const shape: NotifierShape = {
    notify: (subject, message) => Effect.sync(() => void sent.push({ subject: snsSubject(subject), message }))
  }
  return { sent, notifier: shape, layer: Layer.succeed(Notifier, shape) }
}
