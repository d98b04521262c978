import { App, Stack } from "aws-cdk-lib"
import { Template } from "aws-cdk-lib/assertions"
import * as s3 from "aws-cdk-lib/aws-s3"
import { assert, describe, it } from "@effect/vitest"
import { COLD_STORAGE_TAG } from "@backup-actions/config"
import { artifactLifecycleRules } from "./artifact-lifecycle"
import type { DeployConfig } from "./deploy-config"

/** A rule as CloudFormation's AWS::S3::Bucket holds it. */
interface SynthesizedRule {
  readonly Id: string
  readonly Prefix?: string
  readonly TagFilters?: ReadonlyArray<{ readonly Key: string; readonly Value: string }>
  readonly Transitions?: ReadonlyArray<{ readonly StorageClass: string; readonly TransitionInDays: number }>
  readonly ExpirationInDays?: number
  readonly AbortIncompleteMultipartUpload?: unknown
}

const synthesizedRules = (lifecycle: DeployConfig["bucket"]["lifecycle"]): ReadonlyArray<SynthesizedRule> => {
  const stack = new Stack(new App(), "Lifecycle")
  new s3.Bucket(stack, "Artifacts", { lifecycleRules: artifactLifecycleRules(lifecycle) })
  const buckets = Object.values(Template.fromStack(stack).findResources("AWS::S3::Bucket"))
  return buckets[0]?.["Properties"]["LifecycleConfiguration"]["Rules"] as ReadonlyArray<SynthesizedRule>
}

/** What S3 does with an object under these rules: a rule applies when the key has its prefix and the object every tag it names. */
const transitionsOf = (rules: ReadonlyArray<SynthesizedRule>, key: string, tags: Readonly<Record<string, string>>) =>
  rules
    .filter((rule) => key.startsWith(rule.Prefix ?? "") && (rule.TagFilters ?? []).every((filter) => tags[filter.Key] === filter.Value))
    .flatMap((rule) => rule.Transitions ?? [])

const EXAMPLE = { glacierAfterDays: 30, deepArchiveAfterDays: 180, expireAfterDays: 3650 }
const TAGGED = { [COLD_STORAGE_TAG.key]: COLD_STORAGE_TAG.value }

describe("the artifact bucket's lifecycle", () => {
  it("moves tagged archives to GLACIER and then DEEP_ARCHIVE, and never a manifest or another document beside them", () => {
    // Prepare
    const rules = synthesizedRules(EXAMPLE)
    // Act
    const archive = transitionsOf(rules, "archives/ebs/snap-0123456789abcdef0/direct/disk.img.zst", TAGGED)
    const manifest = transitionsOf(rules, "archives/ebs/snap-0123456789abcdef0/direct/manifest.ndjson", {})
    const image = transitionsOf(rules, "archives/ami/ami-0123456789abcdef0/image.json", {})
    const report = transitionsOf(rules, "reports/daily/2026-12-01/report.json", TAGGED)
    // Assess
    assert.deepStrictEqual(archive, [
      { StorageClass: "GLACIER", TransitionInDays: 30 },
      { StorageClass: "DEEP_ARCHIVE", TransitionInDays: 180 }
    ])
    assert.deepStrictEqual([manifest, image, report], [[], [], []])
  })

  it("filters every transition on the cold-storage tag, and keeps expiry and the abort of stale uploads for all of archives/", () => {
    // Act
    const rules = synthesizedRules(EXAMPLE)
    // Assess
    const moving = rules.filter((rule) => (rule.Transitions ?? []).length > 0)
    assert.isAbove(moving.length, 0)
    for (const rule of moving) {
      assert.deepInclude(rule.TagFilters ?? [], { Key: COLD_STORAGE_TAG.key, Value: COLD_STORAGE_TAG.value }, rule.Id)
      assert.isUndefined(rule.AbortIncompleteMultipartUpload, `${rule.Id}: S3 refuses an abort of incomplete uploads in a rule with tag filters`)
    }
    const archives = rules.find((rule) => rule.Id === "archives")
    assert.strictEqual(archives?.Prefix, "archives/")
    assert.isUndefined(archives?.TagFilters)
    assert.strictEqual(archives?.ExpirationInDays, 3650)
    assert.isDefined(archives?.AbortIncompleteMultipartUpload)
  })

  it("has no cold-storage rule when the configuration asks for no transition", () => {
    // Act
    const rules = synthesizedRules({ expireAfterDays: 365 })
    // Assess
    assert.deepStrictEqual(
      rules.map((rule) => rule.Id),
      ["archives", "reports"]
    )
  })
})
