import { Layer } from "effect"
import { DynamoDb, Ebs, Ec2, Rds, Sts } from "@backup-actions/aws"
import { LocalBlockDevices } from "./block-devices"
import { LocalDatabaseEndpoints } from "./database-endpoints"
import { LocalRecoveryPoints } from "./recovery-points"
import { LocalSourceSharing } from "./source-sharing"

export * from "./block-devices"
export * from "./database-endpoints"
export * from "./recovery-points"
export * from "./source-sharing"

/**
 * What the local runtime puts in place of the services whose implementation differs on the
 * emulator: RecoveryPoints, BlockDevices, SourceSharing and DatabaseEndpoints. It makes its own
 * clients from the service's AwsConfig, so that it fits any service, whichever clients that
 * service has; the work directory comes from the service's settings.
 */
export const LocalStandIns = Layer.mergeAll(LocalRecoveryPoints, LocalBlockDevices, LocalSourceSharing, LocalDatabaseEndpoints).pipe(
  Layer.provide(Layer.mergeAll(Ec2.Live, Ebs.Live, Rds.Live, DynamoDb.Live, Sts.Live))
)

/**
 * A service's own layer on the emulator: the stand-ins for what differs there, then the
 * clients, settings and policy the caller gives (a process's environment, or a test's emulator).
 * The service's own layer comes first, so a test that gives one of these services itself keeps it.
 */
export const withLocalStandIns = <ROut, E, RIn, COut, CE, CIn>(services: Layer.Layer<ROut, E, RIn>, clients: Layer.Layer<COut, CE, CIn>) =>
  services.pipe(Layer.provideMerge(LocalStandIns), Layer.provideMerge(clients))
