import { topology, type Topology } from "@backup-actions/config"
import type { DeployConfig } from "./deploy-config"

/** The security tag: deletes are allowed only on resources that carry it. */
export const MANAGED_TAG_KEY = "backup-actions:managed"
export const MANAGED_TAG_VALUE = "true"

/**
 * The names the core stack gives its resources and the service stacks look up: derived from
 * the prefix, account and region, so that stacks share no exports and deploy independently.
 */
export const coreNames = (config: DeployConfig): Topology & { readonly keyAlias: string; readonly accessLogBucket: string } => {
  const names = topology({ prefix: config.prefix, account: config.account, region: config.region })
  return { ...names, keyAlias: `alias/${config.prefix}`, accessLogBucket: `${config.prefix}-access-logs-${config.account}-${config.region}` }
}

export const coreStackName = (config: DeployConfig): string => `${config.prefix}-core`
export const serviceStackName = (config: DeployConfig, service: string): string => `${config.prefix}-${service}`

/** The zones of the core network: the streamer's zone first (restored volumes live there), then the next one. */
export const networkZones = (config: DeployConfig): readonly [string, string] => {
  const suffix = config.streamer.availabilityZoneSuffix
  const next = suffix === "a" ? "b" : "a"
  return [`${config.region}${suffix}`, `${config.region}${next}`]
}

/** The CloudFormation exports of the core stack that service stacks import. */
export const coreExports = (config: DeployConfig) => ({
  vpcId: `${config.prefix}-vpc-id`,
  privateSubnetIds: `${config.prefix}-private-subnet-ids`
})

/**
 * Context for the CDK app: the network's zones are known from the configuration, so
 * synthesis never has to ask AWS for them and works offline.
 */
export const deployContext = (config: DeployConfig): Record<string, unknown> => ({
  [`availability-zones:account=${config.account}:region=${config.region}`]: [...networkZones(config)]
})
