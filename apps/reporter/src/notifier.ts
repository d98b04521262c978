import { PublishCommand } from "@aws-sdk/client-sns"
import { Context, Effect, Layer, Option } from "effect"
import { AwsError, Sns, awsCall } from "@backup-actions/aws"
import { ServiceSettings } from "@backup-actions/config"

export interface NotifierShape {
  /** Sends one message; does nothing when no topic is configured. */
  readonly notify: (subject: string, message: string) => Effect.Effect<void, AwsError>
}

/** SNS subjects are at most 100 printable ASCII characters. */
export const snsSubject = (text: string): string =>
  text
    .replace(/[^\x20-\x7e]/g, "?")
    .slice(0, 100)
    .trim()

/** Failure notifications and digests, through the SNS topic in BACKUP_ACTIONS_TOPIC_ARN. */
export class Notifier extends Context.Tag("backup-actions/Notifier")<Notifier, NotifierShape>() {
  static readonly Live = Layer.effect(
    Notifier,
    Effect.gen(function* () {
      const sns = yield* Sns
      const { notificationTopicArn } = yield* ServiceSettings
      return {
        notify: (subject, message) =>
          Option.match(notificationTopicArn, {
            onNone: () => Effect.logDebug(`no notification topic; not sending "${subject}"`),
            onSome: (topicArn) =>
              awsCall("sns:Publish", (abortSignal) =>
                sns.send(new PublishCommand({ TopicArn: topicArn, Subject: snsSubject(subject), Message: message }), { abortSignal })
              ).pipe(Effect.asVoid)
          })
      }
    })
  )
}
