import { DynamoDBClient, ListTagsOfResourceCommand } from "@aws-sdk/client-dynamodb"
import { DescribeTagsCommand, EC2Client } from "@aws-sdk/client-ec2"
import { ListTagsForResourceCommand, RDSClient } from "@aws-sdk/client-rds"
import { Context, Effect, Layer } from "effect"
import { awsCall } from "./call"
import { AwsConfig, clientOptions } from "./clients"
import { DynamoDb } from "./clients/dynamodb"
import { Ec2 } from "./clients/ec2"
import { Rds } from "./clients/rds"
import type { AwsError } from "./errors"
import { undefinedWhenNotFound } from "./not-found"

/** A protected resource's tags, key to value. */
export type ResourceTags = Readonly<Record<string, string>>

/** The clients that read tags, in one region. */
export interface TagReaders {
  readonly ec2: EC2Client
  readonly rds: RDSClient
  readonly dynamodb: DynamoDBClient
}

/** The fields of an ARN: `arn:partition:service:region:account:resource`. */
interface ArnParts {
  readonly service: string
  readonly region: string
  readonly account: string
  readonly resource: string
}

const arnParts = (arn: string): ArnParts | undefined => {
  const match = /^arn:[^:]+:([^:]+):([^:]*):([^:]*):(.+)$/.exec(arn)
  if (match === null) return undefined
  const [, service = "", region = "", account = "", resource = ""] = match
  return { service, region, account, resource }
}

/** Which API reads a resource's tags, by its ARN; none for resources whose tags are not looked up (EFS, S3, ...). */
type TagSource = { readonly api: "ec2"; readonly resourceId: string } | { readonly api: "rds" } | { readonly api: "dynamodb" }

const tagSourceOf = (parts: ArnParts): TagSource | undefined => {
  if (parts.service === "ec2") {
    // An EBS volume (AWS Backup's EBS) or an EC2 instance (its EC2).
    const resourceId = /^(?:volume\/(vol-[0-9a-zA-Z]+)|instance\/(i-[0-9a-zA-Z]+))$/.exec(parts.resource)
    const id = resourceId?.[1] ?? resourceId?.[2]
    return id === undefined ? undefined : { api: "ec2", resourceId: id }
  }
  // A DB instance (RDS) or a DB cluster (Aurora, and the clusters of DocumentDB and Neptune, which RDS tags too).
  if (parts.service === "rds") return /^(db|cluster):.+$/.test(parts.resource) ? { api: "rds" } : undefined
  if (parts.service === "dynamodb") return /^table\/[^/]+$/.test(parts.resource) ? { api: "dynamodb" } : undefined
  return undefined
}

const toRecord = (tags: ReadonlyArray<{ readonly Key?: string | undefined; readonly Value?: string | undefined }> | undefined): Record<string, string> =>
  Object.fromEntries((tags ?? []).flatMap((tag) => (tag.Key === undefined ? [] : [[tag.Key, tag.Value ?? ""]])))

const ec2Tags = (ec2: EC2Client, resourceId: string) =>
  Effect.gen(function* () {
    const tags: Record<string, string> = {}
    let nextToken: string | undefined
    do {
      const page = yield* awsCall("ec2:DescribeTags", (abortSignal) =>
        ec2.send(new DescribeTagsCommand({ Filters: [{ Name: "resource-id", Values: [resourceId] }], NextToken: nextToken }), { abortSignal })
      )
      Object.assign(tags, toRecord(page.Tags))
      nextToken = page.NextToken === "" ? undefined : page.NextToken
    } while (nextToken !== undefined)
    return tags
  })

const rdsTags = (rds: RDSClient, resourceArn: string) =>
  awsCall("rds:ListTagsForResource", (abortSignal) => rds.send(new ListTagsForResourceCommand({ ResourceName: resourceArn }), { abortSignal })).pipe(
    undefinedWhenNotFound,
    Effect.map((listed) => toRecord(listed?.TagList))
  )

const dynamoDbTags = (dynamodb: DynamoDBClient, resourceArn: string) =>
  Effect.gen(function* () {
    const tags: Record<string, string> = {}
    let nextToken: string | undefined
    do {
      const page = yield* undefinedWhenNotFound(
        awsCall("dynamodb:ListTagsOfResource", (abortSignal) => dynamodb.send(new ListTagsOfResourceCommand({ ResourceArn: resourceArn, NextToken: nextToken }), { abortSignal }))
      )
      Object.assign(tags, toRecord(page?.Tags))
      nextToken = page?.NextToken === "" ? undefined : page?.NextToken
    } while (nextToken !== undefined)
    return tags
  })

/**
 * The protected resource's tags, read as its ARN fits: an EBS volume's or an EC2 instance's
 * through EC2 DescribeTags, a DB instance's or DB cluster's through RDS ListTagsForResource, a
 * table's through DynamoDB ListTagsOfResource. A resource that no longer exists has none, and so
 * has one of any other type (EFS, S3, ...): nothing is looked up for it.
 */
export const readResourceTags = (readers: TagReaders, resourceArn: string): Effect.Effect<ResourceTags, AwsError> => {
  const parts = arnParts(resourceArn)
  const source = parts === undefined ? undefined : tagSourceOf(parts)
  switch (source?.api) {
    case undefined:
      return Effect.succeed({})
    case "ec2":
      return ec2Tags(readers.ec2, source.resourceId)
    case "rds":
      return rdsTags(readers.rds, resourceArn)
    case "dynamodb":
      return dynamoDbTags(readers.dynamodb, resourceArn)
  }
}

export interface ProtectedResourcesShape {
  /** The tags of a protected resource, by its ARN (see `readResourceTags`), in the resource's own region. */
  readonly tagsOf: (resourceArn: string) => Effect.Effect<ResourceTags, AwsError>
}

/** What the services know of the resources AWS Backup protects: their tags, for rules that match on them. */
export class ProtectedResources extends Context.Tag("backup-actions/ProtectedResources")<ProtectedResources, ProtectedResourcesShape>() {
  /**
   * Through the service's own EC2, RDS and DynamoDB clients; a resource of another region (a
   * recovery point copied from there) through clients of that region, made for the one lookup.
   */
  static readonly Live: Layer.Layer<ProtectedResources, never, AwsConfig | Ec2 | Rds | DynamoDb> = Layer.effect(
    ProtectedResources,
    Effect.gen(function* () {
      const settings = yield* AwsConfig
      const own: TagReaders = { ec2: yield* Ec2, rds: yield* Rds, dynamodb: yield* DynamoDb }
      const inRegion = (region: string): TagReaders => {
        const options = clientOptions({ ...settings, region })
        return { ec2: new EC2Client(options), rds: new RDSClient(options), dynamodb: new DynamoDBClient(options) }
      }
      const release = (readers: TagReaders) =>
        Effect.sync(() => {
          readers.ec2.destroy()
          readers.rds.destroy()
          readers.dynamodb.destroy()
        })
      return {
        tagsOf: (resourceArn) => {
          const region = arnParts(resourceArn)?.region ?? ""
          return region === "" || region === settings.region
            ? readResourceTags(own, resourceArn)
            : Effect.acquireUseRelease(
                Effect.sync(() => inRegion(region)),
                (readers) => readResourceTags(readers, resourceArn),
                release
              )
        }
      }
    })
  )
}

/** An AWS Backup "Recovery Point State Change" event, as far as what it is about goes. */
export interface RecoveryPointEvent {
  readonly account?: string | undefined
  readonly detail: {
    readonly resourceType: string
    readonly resourceArn: string
    readonly backupVaultName: string
  }
}

/** What a recovery point is, as every service's policy sees it. */
export interface RecoveryPointSubject {
  readonly recoveryPointArn: string
  /** As AWS Backup names it: EBS, EC2, RDS, Aurora, DynamoDB, ... */
  readonly resourceType: string
  /** The protected resource: the volume, instance, DB instance or cluster, table, ... */
  readonly resourceArn: string
  readonly vaultName: string
  /** The protected resource's tags, when they were looked up (no rule that could apply needs them otherwise). */
  readonly tags?: ResourceTags
}

/** What the event says of its recovery point without looking anything up: enough to tell which rules could apply. */
export const recoveryPointFacts = (event: RecoveryPointEvent) => ({
  resourceType: event.detail.resourceType,
  resourceArn: event.detail.resourceArn,
  vaultName: event.detail.backupVaultName
})

/**
 * What a recovery point is, for one event and its recovery point (from `requireRecoveryPoint`):
 * its resource type, protected resource, vault and, when `lookUpTags` says a rule that could apply
 * matches on them, the protected resource's tags, looked up once here for every plan the service
 * makes. A resource of another account than the event's is not looked up: it has no tags here.
 */
export const recoveryPointSubject = (
  event: RecoveryPointEvent,
  recoveryPointArn: string,
  options: { readonly lookUpTags: boolean }
): Effect.Effect<RecoveryPointSubject, AwsError, ProtectedResources> =>
  Effect.gen(function* () {
    const facts = recoveryPointFacts(event)
    if (!options.lookUpTags) return { recoveryPointArn, ...facts }
    const account = arnParts(facts.resourceArn)?.account ?? ""
    if (event.account !== undefined && account !== "" && account !== event.account) {
      yield* Effect.logInfo(`the tags of ${facts.resourceArn} are not looked up: it is in account ${account}, not ${event.account}; rules that match on tags do not select it`)
      return { recoveryPointArn, ...facts, tags: {} }
    }
    const resources = yield* ProtectedResources
    const tags = yield* resources.tagsOf(facts.resourceArn)
    return { recoveryPointArn, ...facts, tags }
  })
