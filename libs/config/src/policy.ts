import { readFileSync } from "node:fs"
import { Config, Effect, Either, Layer, Context, ParseResult, Schema } from "effect"
import { ArchiveMode, Compression, type ArchivePlan } from "@backup-actions/contracts"
import { EXPORT_MODE_RESOURCE_TYPES, ExportAction, VERIFIED_NATIVE_EXPORT_RESOURCE_TYPES } from "./export-policy"
import { REPLICATE_RESOURCE_TYPES, ReplicateAction } from "./replicate-policy"
import { DrillPolicy } from "./drill-policy"

/** Which recovery points a rule applies to. Every given criterion must hold. */
export const PolicyMatch = Schema.Struct({
  resourceTypes: Schema.optional(Schema.Array(Schema.String)),
  vaults: Schema.optional(Schema.Array(Schema.String)),
  /** A regular expression tested against the protected resource's ARN. */
  resourceArnPattern: Schema.optional(Schema.String),
  /** Tags the protected resource must carry, with these values. */
  tags: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.String }))
})

export const ArchiveAction = Schema.Struct({
  mode: ArchiveMode,
  compression: Schema.optionalWith(Compression, { default: () => "zstd" as const }),
  /** Delete the recovery point once its archive is verified. Never without verification. */
  deleteSourceAfterVerify: Schema.optionalWith(Schema.Boolean, { default: () => false }),
  /**
   * Dump mode: the class of the short-lived DB instance the dump reads from. It only has to
   * serve one sequential reader, so the smallest class does; a large database may want more.
   */
  instanceClass: Schema.optional(Schema.String)
})

/** The class of a dump's temporary DB instance when the rule names none. */
export const DEFAULT_DUMP_INSTANCE_CLASS = "db.t4g.micro"

export const PolicyRule = Schema.Struct({
  name: Schema.String,
  match: PolicyMatch,
  archive: Schema.optional(ArchiveAction),
  export: Schema.optional(ExportAction),
  replicate: Schema.optional(ReplicateAction)
})
export type PolicyRule = typeof PolicyRule.Type

/**
 * The resource types as AWS Backup names them in its events and APIs (GetSupportedResourceTypes),
 * in their exact case: a rule's resourceTypes are compared with the event's as they are.
 */
export const BACKUP_RESOURCE_TYPES: ReadonlyArray<string> = [
  "Aurora",
  "CloudFormation",
  "DocumentDB",
  "DynamoDB",
  "EBS",
  "EC2",
  "EFS",
  "EKS",
  "FSx",
  "Neptune",
  "RDS",
  "Redshift",
  "S3",
  "SAP HANA on Amazon EC2",
  "Storage Gateway",
  "Timestream",
  "VirtualMachine"
]

/** The resource types each archive mode reads: EBS snapshots (direct, volume) and RDS DB snapshots (dump; Aurora has no dump). */
export const ARCHIVE_MODE_RESOURCE_TYPES: Readonly<Record<ArchiveMode, ReadonlyArray<string>>> = {
  direct: ["EBS"],
  volume: ["EBS"],
  dump: ["RDS"]
}

/** "A", "A and B", "A, B and C" (or "or"). */
const listed = (items: ReadonlyArray<string>, conjunction: "and" | "or"): string =>
  items.length <= 1 ? items.join("") : `${items.slice(0, -1).join(", ")} ${conjunction} ${items[items.length - 1]}`

/** What an action needs of the rule's resource types, when the rule lists them: the types it cannot act on, named. */
const misfit = (rule: string, what: string, fits: ReadonlyArray<string>, resourceTypes: ReadonlyArray<string> | undefined): ReadonlyArray<string> => {
  const outside = (resourceTypes ?? []).filter((type) => BACKUP_RESOURCE_TYPES.includes(type) && !fits.includes(type))
  return outside.length === 0 ? [] : [`rule "${rule}": ${what} needs resource type ${listed(fits, "or")}, but the rule matches ${listed(outside, "and")}`]
}

const unknownResourceType = (rule: string, type: string): string => {
  const sameLetters = BACKUP_RESOURCE_TYPES.find((known) => known.toLowerCase() === type.toLowerCase())
  return sameLetters === undefined
    ? `rule "${rule}": match.resourceTypes: "${type}" is not an AWS Backup resource type (${BACKUP_RESOURCE_TYPES.join(", ")})`
    : `rule "${rule}": match.resourceTypes: "${type}" is not an AWS Backup resource type; AWS Backup writes it "${sameLetters}"`
}

/**
 * Why each rule of the policy could never act, one reason per problem, naming the rule and the
 * field: a resource type AWS Backup does not have (names are compared exactly), an empty list
 * that matches nothing, a regular expression that does not compile, no action at all, or an
 * action that cannot apply to a resource type the rule lists (archive direct and volume read
 * EBS, dump RDS; the exporter's modes their own kinds; replicas EBS, RDS and Aurora). A rule
 * that lists no resource types applies each action where it can, so it is never refused for it.
 */
export const policyProblems = (policy: { readonly rules: ReadonlyArray<PolicyRule> }): ReadonlyArray<string> =>
  policy.rules.flatMap((rule): ReadonlyArray<string> => {
    const { name, match } = rule
    const resourceTypes = match.resourceTypes
    const pattern = match.resourceArnPattern
    return [
      ...(resourceTypes ?? []).filter((type) => !BACKUP_RESOURCE_TYPES.includes(type)).map((type) => unknownResourceType(name, type)),
      ...(resourceTypes !== undefined && resourceTypes.length === 0 ? [`rule "${name}": match.resourceTypes is empty, so the rule matches no recovery point`] : []),
      ...(match.vaults !== undefined && match.vaults.length === 0 ? [`rule "${name}": match.vaults is empty, so the rule matches no recovery point`] : []),
      ...(pattern !== undefined && Either.isLeft(Either.try(() => new RegExp(pattern))) ? [`rule "${name}": resourceArnPattern is not a valid regular expression`] : []),
      ...(rule.archive === undefined && rule.export === undefined && rule.replicate === undefined
        ? [`rule "${name}": asks for no action (archive, export or replicate), so it never acts`]
        : []),
      ...(rule.archive === undefined ? [] : misfit(name, `archive mode "${rule.archive.mode}"`, ARCHIVE_MODE_RESOURCE_TYPES[rule.archive.mode], resourceTypes)),
      ...(rule.export === undefined ? [] : misfit(name, `export mode "${rule.export.mode}"`, EXPORT_MODE_RESOURCE_TYPES[rule.export.mode], resourceTypes)),
      ...(rule.export?.mode === "native" && rule.export.deleteSourceAfterVerify
        ? misfit(
            name,
            `export deleteSourceAfterVerify in mode "native" (the exporter verifies only an AMI's native export)`,
            VERIFIED_NATIVE_EXPORT_RESOURCE_TYPES,
            (resourceTypes ?? []).filter((type) => EXPORT_MODE_RESOURCE_TYPES.native.includes(type))
          )
        : []),
      ...(rule.replicate === undefined ? [] : misfit(name, "replicate", REPLICATE_RESOURCE_TYPES, resourceTypes))
    ]
  })

/** A policy as the schema reads it, before the checks that look at rules as a whole. */
const PolicyShape = Schema.Struct({
  rules: Schema.Array(PolicyRule),
  /** Restore drills of every protected resource's newest artifact; none when left out. */
  drill: Schema.optional(DrillPolicy)
})

/**
 * The policy: rules that can each act on something (see `policyProblems`). A rule that could
 * never act is refused, with its name and the reason, rather than accepted to do nothing.
 */
export const Policy = PolicyShape.pipe(
  Schema.filter((policy) => policyProblems(policy), { identifier: "Policy", description: "rules that can each act on some recovery point" })
)
export type Policy = typeof Policy.Type
/** A policy as written (JSON, BACKUP_ACTIONS_POLICY): defaults may be left out. */
export type PolicyDocument = typeof Policy.Encoded

/** Archive every EBS recovery point through the EBS direct APIs, keep the source. */
export const DEFAULT_POLICY: Policy = {
  rules: [
    {
      name: "ebs-direct",
      match: { resourceTypes: ["EBS"] },
      archive: { mode: "direct", compression: "zstd", deleteSourceAfterVerify: false }
    }
  ]
}

export class InvalidPolicy extends Schema.TaggedError<InvalidPolicy>()("InvalidPolicy", {
  origin: Schema.String,
  reason: Schema.String
}) {}

const decodePolicy = Schema.decodeUnknownEither(PolicyShape, { errors: "all", onExcessProperty: "error" })

/** Parses a policy document, with a reason that names the offending rule and field. */
export const parsePolicy = (text: string, origin: string): Either.Either<Policy, InvalidPolicy> => {
  const json = Either.try({
    try: (): unknown => JSON.parse(text),
    catch: (error) => new InvalidPolicy({ origin, reason: `not JSON: ${String(error)}` })
  })
  return Either.flatMap(json, (value) => {
    const decoded = decodePolicy(value)
    if (Either.isLeft(decoded)) {
      return Either.left(new InvalidPolicy({ origin, reason: ParseResult.TreeFormatter.formatErrorSync(decoded.left) }))
    }
    const problems = policyProblems(decoded.right)
    return problems.length === 0 ? Either.right(decoded.right) : Either.left(new InvalidPolicy({ origin, reason: problems.join("; ") }))
  })
}

/** What a recovery point is, as far as the policy cares. */
export interface RecoveryPointFacts {
  readonly resourceType: string
  readonly resourceArn: string
  readonly vaultName: string
  /** The protected resource's tags, when the caller looked them up; rules that need tags match nothing without them. */
  readonly tags?: Readonly<Record<string, string>>
}

const matches = (rule: PolicyRule, facts: RecoveryPointFacts): boolean =>
  (rule.match.resourceTypes === undefined || rule.match.resourceTypes.includes(facts.resourceType)) &&
  (rule.match.vaults === undefined || rule.match.vaults.includes(facts.vaultName)) &&
  (rule.match.resourceArnPattern === undefined || new RegExp(rule.match.resourceArnPattern).test(facts.resourceArn)) &&
  (rule.match.tags === undefined ||
    Object.entries(rule.match.tags).every(([key, value]) => facts.tags !== undefined && facts.tags[key] === value))

export type ActionName = "archive" | "export" | "replicate"

/** The first rule that asks for the action and matches the recovery point. */
const firstRuleFor = (policy: Policy, action: ActionName, facts: RecoveryPointFacts): PolicyRule | undefined =>
  policy.rules.find((candidate) => candidate[action] !== undefined && matches(candidate, facts))

/** What is known of a recovery point before its tags are looked up; the vault may not be known either (a listing). */
export interface UntaggedFacts {
  readonly resourceType: string
  readonly resourceArn: string
  readonly vaultName?: string | undefined
}

/** Whether a rule matches on what is known: surely (it needs nothing unknown), perhaps (it needs the tags or the vault), or not. */
const matchesBeforeTags = (rule: PolicyRule, facts: UntaggedFacts): "surely" | "perhaps" | "not" => {
  const { resourceTypes, vaults, resourceArnPattern, tags } = rule.match
  if (resourceTypes !== undefined && !resourceTypes.includes(facts.resourceType)) return "not"
  if (resourceArnPattern !== undefined && !new RegExp(resourceArnPattern).test(facts.resourceArn)) return "not"
  if (vaults !== undefined && facts.vaultName !== undefined && !vaults.includes(facts.vaultName)) return "not"
  return tags !== undefined || (vaults !== undefined && facts.vaultName === undefined) ? "perhaps" : "surely"
}

/**
 * The rules that may decide an action for a recovery point before its tags are known: those
 * that ask for the action and match on everything else, in order, up to the first that needs
 * nothing more (it wins whatever the tags say, so no rule after it can).
 */
export const contendingRules = (policy: Policy, action: ActionName, facts: UntaggedFacts): ReadonlyArray<PolicyRule> => {
  const contending: Array<PolicyRule> = []
  for (const rule of policy.rules) {
    if (rule[action] === undefined) continue
    const verdict = matchesBeforeTags(rule, facts)
    if (verdict === "not") continue
    contending.push(rule)
    if (verdict === "surely") break
  }
  return contending
}

/**
 * Whether some rule may ask for this action on the recovery point once its tags are known, and
 * (when `accepts` is given) ask for it in a way the caller acts on, such as one archive mode.
 */
export const mayApply = (policy: Policy, action: ActionName, facts: UntaggedFacts, accepts: (rule: PolicyRule) => boolean = () => true): boolean =>
  contendingRules(policy, action, facts).some(accepts)

/** Whether the action's rule for the recovery point depends on the protected resource's tags, so that they must be looked up first. */
export const needsTags = (policy: Policy, action: ActionName, facts: UntaggedFacts): boolean =>
  contendingRules(policy, action, facts).some((rule) => rule.match.tags !== undefined)

/** The archive plan of the first rule that matches and asks for an archive. */
export const archivePlanFor = (policy: Policy, facts: RecoveryPointFacts): ArchivePlan | undefined => {
  const rule = firstRuleFor(policy, "archive", facts)
  return rule?.archive === undefined ? undefined : { rule: rule.name, ...rule.archive }
}

export type ExportPlan = ExportAction & { readonly rule: string }

/** The export plan of the first rule that matches and asks for an export. */
export const exportPlanFor = (policy: Policy, facts: RecoveryPointFacts): ExportPlan | undefined => {
  const rule = firstRuleFor(policy, "export", facts)
  return rule?.export === undefined ? undefined : { rule: rule.name, ...rule.export }
}

export type ReplicaPlan = ReplicateAction & { readonly rule: string }

/** The replication plan of the first rule that matches and asks for a replica. */
export const replicaPlanFor = (policy: Policy, facts: RecoveryPointFacts): ReplicaPlan | undefined => {
  const rule = firstRuleFor(policy, "replicate", facts)
  return rule?.replicate === undefined ? undefined : { rule: rule.name, ...rule.replicate }
}

/** The policy in force, from BACKUP_ACTIONS_POLICY (JSON) or BACKUP_ACTIONS_POLICY_FILE, else the default. */
export class PolicySource extends Context.Tag("backup-actions/Policy")<PolicySource, Policy>() {
  static readonly fromEnv = Layer.effect(
    PolicySource,
    Effect.gen(function* () {
      const inline = yield* Config.option(Config.string("BACKUP_ACTIONS_POLICY"))
      const file = yield* Config.option(Config.string("BACKUP_ACTIONS_POLICY_FILE"))
      if (inline._tag === "Some") return yield* parsePolicy(inline.value, "BACKUP_ACTIONS_POLICY")
      if (file._tag === "Some") {
        const path = file.value
        const text = yield* Effect.try({
          try: () => readFileSync(path, "utf8"),
          catch: (error) => new InvalidPolicy({ origin: path, reason: `cannot read: ${String(error)}` })
        })
        return yield* parsePolicy(text, path)
      }
      return DEFAULT_POLICY
    })
  )

  static readonly layer = (policy: Policy) => Layer.succeed(PolicySource, policy)
}
