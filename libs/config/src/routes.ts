import {
  AWS_BACKUP_JOB_END_STATES,
  ArchiveCompleted,
  BackupJobStateChange,
  CopyJobStateChange,
  ExportCompleted,
  RecoveryPointStateChange,
  ReplicaCompleted,
  RestoreCompleted,
  RestoreJobStateChange,
  patternOfRoute,
  eventRoute,
  type Route,
  type EventPattern
} from "@backup-actions/contracts"
import type { ServiceName } from "./topology"

/**
 * What each service subscribes to. The services' handlers, local provisioning and the CDK
 * rules all read this one table, so a rule can never match other events than its handler reads.
 */
export const ROUTES = {
  restorer: {
    // The restorer alone decides every archive plan, and hands it on in Restore Completed.
    // RDS for engine-native dumps (archive mode "dump"), which read from a restored DB instance.
    recoveryPoints: eventRoute(RecoveryPointStateChange, { status: ["COMPLETED"], resourceType: ["EBS", "RDS"] }),
    // Archives of what the restorer made (a volume, or a DB instance for a dump): it deletes them.
    volumeArchives: eventRoute(ArchiveCompleted, { mode: ["volume", "dump"] })
  },
  streamer: {
    // The archive plans the restorer decided: with the volume or DB instance it restored, or,
    // for direct mode, with nothing restored. The streamer never reads the archive rules itself.
    archivePlans: eventRoute(RestoreCompleted, { status: ["restored", "not-needed"] }),
    /** An AMI exported in direct mode: its snapshots are archived through the EBS direct APIs. */
    amiExports: eventRoute(ExportCompleted, { kind: ["ami"], mode: ["direct"], status: ["exported"] })
  },
  exporter: {
    recoveryPoints: eventRoute(RecoveryPointStateChange, { status: ["COMPLETED"], resourceType: ["DynamoDB", "RDS", "Aurora", "EC2"] })
  },
  sharer: {
    recoveryPoints: eventRoute(RecoveryPointStateChange, { status: ["COMPLETED"], resourceType: ["EBS", "RDS", "Aurora"] })
  },
  reporter: {
    // A direct-mode hand-off (status not-needed) restored nothing: it is no restore to report.
    restores: eventRoute(RestoreCompleted, { status: ["restored", "failed"] }),
    archives: eventRoute(ArchiveCompleted),
    exports: eventRoute(ExportCompleted),
    replicas: eventRoute(ReplicaCompleted),
    // AWS Backup's own jobs, in their end states only: failures are announced, and every one is counted.
    // Backup and copy jobs report `state`, restore jobs `status`.
    backupJobs: eventRoute(BackupJobStateChange, { state: AWS_BACKUP_JOB_END_STATES }),
    copyJobs: eventRoute(CopyJobStateChange, { state: AWS_BACKUP_JOB_END_STATES }),
    restoreJobs: eventRoute(RestoreJobStateChange, { status: AWS_BACKUP_JOB_END_STATES })
  }
} as const

/** The event patterns of a service's rules. */
export const patternsFor = (service: ServiceName): ReadonlyArray<EventPattern> =>
  Object.values<Route<string, string, unknown>>(ROUTES[service]).map((entry) => patternOfRoute(entry))
