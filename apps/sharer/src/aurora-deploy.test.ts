import { assert, describe, it } from "@effect/vitest"
import { statementsOf, synthesizeService, testDeployConfig, testImage } from "@backup-actions/deploy/testing"
import { sharerStack } from "./deploy"

describe("the sharer's stack, for Aurora cluster snapshots", () => {
  const { template } = synthesizeService((app) => sharerStack(app, testDeployConfig(), { image: testImage() }))
  const statements = statementsOf(template)
  const withAction = (action: string) => statements.filter((statement) => [statement.Action].flat().includes(action))

  it("shares only the project's cluster snapshots and deletes only the replicas it tagged", () => {
    // Act
    const share = withAction("rds:ModifyDBClusterSnapshotAttribute")
    const remove = withAction("rds:DeleteDBClusterSnapshot")
    // Assess
    assert.strictEqual(share.length, 1)
    assert.deepStrictEqual(share[0]?.Condition, { StringEquals: { "rds:cluster-snapshot-tag/backup-actions:managed": "true" } })
    assert.match(JSON.stringify(share[0]), /:cluster-snapshot:\*/)
    assert.strictEqual(remove.length, 1)
    assert.deepStrictEqual(remove[0]?.Condition, { StringEquals: { "rds:cluster-snapshot-tag/backup-actions:managed-by": "sharer" } })
    assert.match(JSON.stringify(remove[0]), /:cluster-snapshot:dr-\*/)
  })

  it("copies cluster snapshots only on cluster snapshot ARNs and tags only the copies it names", () => {
    // Act
    const copy = withAction("rds:CopyDBClusterSnapshot")
    const tagging = withAction("rds:AddTagsToResource")
    // Assess
    assert.strictEqual(copy.length, 1)
    assert.deepStrictEqual([copy[0]?.Action].flat(), ["rds:CopyDBClusterSnapshot"])
    assert.match(JSON.stringify(copy[0]), /:cluster-snapshot:\*/)
    assert.notMatch(JSON.stringify(copy[0]), /:snapshot:\*/)
    assert.match(JSON.stringify(tagging), /:cluster-snapshot:dr-\*/)
  })
})
