import { readFileSync } from "node:fs"
import { Config, Effect, Either, Layer, Context, ParseResult, Schema } from "effect"
import { ArchiveMode, Compression, type ArchivePlan } from "@backup-actions/contracts"
import { ExportAction } from "./export-policy"
import { ReplicateAction } from "./replicate-policy"

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

export const Policy = Schema.Struct({ rules: Schema.Array(PolicyRule) })
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

const decodePolicy = Schema.decodeUnknownEither(Policy, { errors: "all", onExcessProperty: "error" })

/** Parses a policy document, with a reason that names the offending field. */
export const parsePolicy = (text: string, origin: string): Either.Either<Policy, InvalidPolicy> => {
  const json = Either.try({
    try: (): unknown => JSON.parse(text),
    catch: (error) => new InvalidPolicy({ origin, reason: `not JSON: ${String(error)}` })
  })
  return Either.flatMap(json, (value) => {
    const decoded = decodePolicy(value)
    if (Either.isLeft(decoded)) {
      return Either.left(
        new InvalidPolicy({ origin, reason: ParseResult.TreeFormatter.formatErrorSync(decoded.left) })
      )
    }
    const badPattern = decoded.right.rules.find((rule) => {
      const pattern = rule.match.resourceArnPattern
      return pattern !== undefined && Either.isLeft(Either.try(() => new RegExp(pattern)))
    })
    return badPattern === undefined
      ? Either.right(decoded.right)
      : Either.left(new InvalidPolicy({ origin, reason: `rule "${badPattern.name}": resourceArnPattern is not a valid regular expression` }))
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

type ActionName = "archive" | "export" | "replicate"

/** The first rule that asks for the action and matches the recovery point. */
const firstRuleFor = (policy: Policy, action: ActionName, facts: RecoveryPointFacts): PolicyRule | undefined =>
  policy.rules.find((candidate) => candidate[action] !== undefined && matches(candidate, facts))

/** Whether some rule asks for this action on recovery points of the given type (before tags are known). */
export const mayApply = (policy: Policy, action: ActionName, resourceType: string): boolean =>
  policy.rules.some(
    (rule) => rule[action] !== undefined && (rule.match.resourceTypes === undefined || rule.match.resourceTypes.includes(resourceType))
  )

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
