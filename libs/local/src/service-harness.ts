import { tmpdir } from "node:os"
import { ScanCommand, type AttributeValue } from "@aws-sdk/client-dynamodb"
import { Effect, Layer, Option } from "effect"
import { AllClientsLive, DynamoDb, awsCall } from "@backup-actions/aws"
import type { EventPattern } from "@backup-actions/contracts"
import { PolicySource, ServiceSettings, patternsFor, topology, type Policy, type ServiceName } from "@backup-actions/config"
import { EMULATOR_ACCOUNT, EMULATOR_REGION, emulatorAwsConfig, emulatorClients, startEmulator, type Emulator } from "./emulator"
import { startBackupForwarding } from "./backup-forwarding"
import { provision, type ProvisionedStack } from "./provision"
import { tapBus, type Tap } from "./taps"
import { withLocalStandIns } from "./stand-ins"

/**
 * Provisions the topology for one service under its own prefix: the bus, the forwarding rule
 * (to the forwarding leg's queue; `startServiceHarness` runs the leg), the service's queue and
 * DLQ with its rules, the bucket, the ledger and the topic. The patterns are the service's
 * routes unless a test subscribes it to others.
 */
export const provisionService = (options: { readonly prefix: string; readonly service: ServiceName; readonly patterns?: ReadonlyArray<EventPattern> }) =>
  provision(topology({ prefix: options.prefix, account: EMULATOR_ACCOUNT, region: EMULATOR_REGION }), EMULATOR_REGION, [
    { name: options.service, patterns: options.patterns ?? patternsFor(options.service) }
  ])

/**
 * The settings a running service would read, pointed at what provisioning made for it, so that
 * a handler under test reads and writes the same queue, DLQ, bus, bucket and ledger. The queue
 * URLs are empty when the stack has no queue for the service (a test that never polls).
 */
export const serviceSettingsFor = (
  stack: ProvisionedStack,
  service: ServiceName,
  options: { readonly workDir?: string; readonly notificationTopicArn?: string } = {}
) => {
  const queue = stack.queues[service]
  return ServiceSettings.layer({
    busName: stack.busName,
    artifactBucket: stack.artifactBucket,
    ledgerTable: stack.ledgerTable,
    queueUrl: queue?.url ?? "",
    deadLetterQueueUrl: queue?.deadLetterUrl ?? "",
    workDir: options.workDir ?? tmpdir(),
    notificationTopicArn: Option.fromNullable(options.notificationTopicArn)
  })
}

/**
 * A service's own layers as the local runtime builds them, but on a test's emulator: the local
 * stand-ins (see `LocalStandIns`), every client, the AWS settings (so that a handler can derive
 * other regions and accounts), its settings and a policy of the test's choosing.
 */
export const serviceOnEmulator = <ROut, E, RIn>(
  services: Layer.Layer<ROut, E, RIn>,
  options: { readonly endpoint: string; readonly settings: Layer.Layer<ServiceSettings>; readonly policy: Policy }
) =>
  withLocalStandIns(
    services,
    Layer.mergeAll(AllClientsLive, options.settings, PolicySource.layer(options.policy)).pipe(Layer.provideMerge(emulatorAwsConfig(options.endpoint)))
  )

/** One service's stack on an emulator of its own, shared by the tests of a file. */
export interface ServiceHarness {
  readonly emulator: Emulator
  readonly stack: ProvisionedStack
  /** The service's settings on this stack (see `serviceSettingsFor`). */
  readonly settings: Layer.Layer<ServiceSettings>
  /** The service's layers on this emulator, with the given policy (see `serviceOnEmulator`). */
  readonly layer: <ROut, E, RIn>(services: Layer.Layer<ROut, E, RIn>, policy: Policy) => ReturnType<typeof serviceOnEmulator<ROut, E, RIn>>
  /** Listens on the stack's bus for what the service publishes; the tap's queue is named `<prefix>-<suffix>`. */
  readonly tapBus: (pattern: EventPattern, suffix: string) => Promise<Tap>
  readonly stop: () => Promise<void>
}

/**
 * Starts an emulator and provisions one service's stack on it, for a test file's `beforeAll`
 * (stop it in `afterAll`), with the forwarding leg running, so that AWS Backup's events put on
 * the default bus reach the service's queue as on AWS. The emulator is stopped again when
 * provisioning fails, so that a broken set-up leaves no process behind.
 */
export const startServiceHarness = async (options: {
  /** Names the emulator's log and prefixes every resource, so that test files never share one. */
  readonly prefix: string
  readonly service: ServiceName
  readonly patterns?: ReadonlyArray<EventPattern>
}): Promise<ServiceHarness> => {
  const emulator = await startEmulator({ name: options.prefix })
  const onEmulator = <A, E>(effect: Effect.Effect<A, E, Layer.Layer.Success<ReturnType<typeof emulatorClients>>>) =>
    Effect.runPromise(Effect.scoped(effect.pipe(Effect.provide(emulatorClients(emulator.endpoint)))))
  const stack = await onEmulator(provisionService(options)).catch(async (error: unknown) => {
    await emulator.stop()
    throw error
  })
  const settings = serviceSettingsFor(stack, options.service)
  const forwarding = startBackupForwarding(emulator.endpoint, { queueUrl: stack.backupEventsQueue.url, busName: stack.busName })
  return {
    emulator,
    stack,
    settings,
    layer: (services, policy) => serviceOnEmulator(services, { endpoint: emulator.endpoint, settings, policy }),
    tapBus: (pattern, suffix) => onEmulator(tapBus(stack.busName, pattern, `${options.prefix}-${suffix}`)),
    stop: async () => {
      await forwarding.stop()
      await emulator.stop()
    }
  }
}

const stringOf = (value: AttributeValue | undefined): string => value?.S ?? ""

/**
 * Every step in a ledger as "<recovery point> <action>", sorted: what a test compares before and
 * after a handler ran to show that it recorded exactly the steps it should (or none).
 */
export const ledgerSteps = (ledgerTable: string) =>
  Effect.gen(function* () {
    const dynamodb = yield* DynamoDb
    const steps: Array<string> = []
    let startKey: Record<string, AttributeValue> | undefined
    do {
      const page = yield* awsCall("dynamodb:Scan", (abortSignal) =>
        dynamodb.send(new ScanCommand({ TableName: ledgerTable, ConsistentRead: true, ExclusiveStartKey: startKey }), { abortSignal })
      )
      steps.push(...(page.Items ?? []).map((item) => `${stringOf(item["pk"])} ${stringOf(item["sk"])}`))
      startKey = page.LastEvaluatedKey
    } while (startKey !== undefined)
    return steps.sort()
  })
