import { Console, Schema } from "effect"
import { FailoverResult, type RestoredResource } from "@backup-actions/contracts"

/** `1h 02m 03s` */
export const describeAge = (seconds: number): string => {
  const hours = Math.floor(seconds / 3600)
  const minutes = Math.floor((seconds % 3600) / 60)
  const rest = seconds % 60
  return hours > 0 ? `${hours}h ${String(minutes).padStart(2, "0")}m ${String(rest).padStart(2, "0")}s` : `${minutes}m ${String(rest).padStart(2, "0")}s`
}

/** The DR side as the output and the refusals name it. */
export const describeWhere = (region: string, roleArn: string | undefined): string =>
  `${region} of ${roleArn === undefined ? "the caller's account" : `the account of ${roleArn}`}`

const RESTORED_NOUNS: Record<RestoredResource["kind"], string> = { "db-instance": "DB instance", "db-cluster": "DB cluster", volume: "volume" }

/** The result for a reader: what was restored from which replica, where to connect, and the RPO. */
export const failoverText = (result: FailoverResult, where: string): string => {
  const restored = result.restored
  return [
    `failover of ${result.source} in ${where}`,
    `  replica   ${result.replica.arn}${result.replica.sourceTakenAt === undefined ? "" : ` (source taken ${result.replica.sourceTakenAt})`}`,
    `  restored  ${RESTORED_NOUNS[restored.kind]} ${restored.id}${restored.instanceId === undefined ? "" : ` with writer DB instance ${restored.instanceId}`}: ${restored.status}`,
    ...(restored.endpoint === undefined ? [] : [`  endpoint  ${restored.endpoint}${restored.kind === "db-cluster" ? " (writer)" : ""}`]),
    ...(restored.availabilityZone === undefined ? [] : [`  zone      ${restored.availabilityZone}`]),
    `  RPO       ${describeAge(result.rpoSeconds)} (${result.rpoSeconds} s${result.rpoFrom === "source snapshot" ? "" : ", at least: counted from the replica's creation, the source's time is not recorded"})`
  ].join("\n")
}

/** The result on stdout: one JSON object that decodes as a FailoverResult, or text. */
export const printFailover = (result: FailoverResult, where: string, json: boolean) =>
  Console.log(json ? JSON.stringify(Schema.encodeSync(FailoverResult)(result), null, 2) : failoverText(result, where))
