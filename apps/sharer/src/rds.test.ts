import { assert, describe, it } from "@effect/vitest"
import { CopyDBSnapshotCommand, DeleteDBSnapshotCommand, DescribeDBSnapshotsCommand, ModifyDBSnapshotAttributeCommand } from "@aws-sdk/client-rds"
import { DescribeKeyCommand } from "@aws-sdk/client-kms"
import { Effect } from "effect"
import { DESTINATION_ACCOUNT, DESTINATION_KEY_ARN, SOURCE_ACCOUNT, SOURCE_REGION, job, mockAccounts, mockRdsCopies, plan } from "./test-accounts"
import { dbSnapshotIdentifier, replicateDbSnapshot } from "./rds"
import { MANAGED_BY_TAG } from "./tags"

const SOURCE_NAME = "awsbackup:job-1234abcd"
const SOURCE_ARN = `arn:aws:rds:${SOURCE_REGION}:${SOURCE_ACCOUNT}:snapshot:${SOURCE_NAME}`
const SOURCE_KEY = `arn:aws:kms:${SOURCE_REGION}:${SOURCE_ACCOUNT}:key/source-cmk`
const STAGING_KEY = `arn:aws:kms:${SOURCE_REGION}:${DESTINATION_ACCOUNT}:key/staging-cmk`

const dbJob = () =>
  job("unused", {
    recoveryPointArn: SOURCE_ARN,
    resourceArn: `arn:aws:rds:${SOURCE_REGION}:${SOURCE_ACCOUNT}:db:orders`,
    resourceType: "RDS",
    plan: plan({ stagingKmsKeyId: "alias/dr-staging" })
  })

describe("replicating an RDS DB snapshot", () => {
  it.effect("shares it, stages a copy in the source region, copies that across on the destination's key and deletes the intermediate", () =>
    Effect.gen(function* () {
      // Prepare
      const mocks = mockAccounts()
      mocks.sourceRds.on(DescribeDBSnapshotsCommand).resolves({
        DBSnapshots: [{ DBSnapshotIdentifier: SOURCE_NAME, Status: "available", Encrypted: true, KmsKeyId: SOURCE_KEY, SnapshotCreateTime: new Date(0) }]
      })
      mocks.sourceRds.on(ModifyDBSnapshotAttributeCommand).resolves({})
      mocks.sourceKms.on(DescribeKeyCommand).resolves({ KeyMetadata: { KeyId: "source-cmk", Arn: SOURCE_KEY, KeyManager: "CUSTOMER", KeyState: "Enabled" } })
      mocks.stagingKms.on(DescribeKeyCommand).resolves({ KeyMetadata: { KeyId: "staging-cmk", Arn: STAGING_KEY, KeyManager: "CUSTOMER", KeyState: "Enabled" } })
      mockRdsCopies(mocks.stagingRds, STAGING_KEY, "instances")
      mockRdsCopies(mocks.destinationRds, DESTINATION_KEY_ARN, "instances")
      const stagingName = "dr-staging-awsbackup-job-1234abcd"
      // Act
      const result = yield* replicateDbSnapshot(dbJob()).pipe(Effect.provide(mocks.layer))
      // Assess: shared through `restore`, then taken back
      assert.deepStrictEqual(
        mocks.sourceRds.commandCalls(ModifyDBSnapshotAttributeCommand).map((call) => call.args[0].input),
        [
          { DBSnapshotIdentifier: SOURCE_NAME, AttributeName: "restore", ValuesToAdd: [DESTINATION_ACCOUNT] },
          { DBSnapshotIdentifier: SOURCE_NAME, AttributeName: "restore", ValuesToRemove: [DESTINATION_ACCOUNT] }
        ]
      )
      // Assess: the intermediate copy in the source region, on the destination account's staging key
      const staged = mocks.stagingRds.commandCalls(CopyDBSnapshotCommand).map((call) => call.args[0].input)
      assert.strictEqual(staged.length, 1)
      assert.strictEqual(staged[0]?.SourceDBSnapshotIdentifier, SOURCE_ARN)
      assert.strictEqual(staged[0]?.TargetDBSnapshotIdentifier, stagingName)
      assert.strictEqual(staged[0]?.KmsKeyId, STAGING_KEY)
      // Assess: the cross-region copy on the destination's key, from the intermediate's ARN (whose region makes the SDK pre-sign it)
      const copied = mocks.destinationRds.commandCalls(CopyDBSnapshotCommand).map((call) => call.args[0].input)
      assert.strictEqual(copied.length, 1)
      assert.strictEqual(copied[0]?.SourceDBSnapshotIdentifier, `arn:aws:rds:${SOURCE_REGION}:${DESTINATION_ACCOUNT}:snapshot:${stagingName}`)
      assert.strictEqual(copied[0]?.TargetDBSnapshotIdentifier, "dr-awsbackup-job-1234abcd")
      assert.strictEqual(copied[0]?.KmsKeyId, DESTINATION_KEY_ARN)
      assert.deepInclude(copied[0]?.Tags ?? [], { Key: MANAGED_BY_TAG, Value: "sharer" })
      // Assess: the intermediate is gone, the source untouched
      assert.deepStrictEqual(mocks.stagingRds.commandCalls(DeleteDBSnapshotCommand).map((call) => call.args[0].input), [{ DBSnapshotIdentifier: stagingName }])
      assert.strictEqual(mocks.sourceRds.commandCalls(DeleteDBSnapshotCommand).length, 0)
      assert.strictEqual(result._tag, "Succeeded")
      assert.strictEqual(result.outcome.replicaArn, `arn:aws:rds:eu-west-1:${DESTINATION_ACCOUNT}:snapshot:dr-awsbackup-job-1234abcd`)
    })
  )

  it.effect("fails with the fix, and shares and copies nothing, when the source is on the default aws/rds key", () =>
    Effect.gen(function* () {
      // Prepare
      const mocks = mockAccounts()
      mocks.sourceRds.on(DescribeDBSnapshotsCommand).resolves({
        DBSnapshots: [{ DBSnapshotIdentifier: SOURCE_NAME, Status: "available", Encrypted: true, KmsKeyId: SOURCE_KEY }]
      })
      mocks.sourceKms.on(DescribeKeyCommand).resolves({ KeyMetadata: { KeyId: "aws-rds", Arn: SOURCE_KEY, KeyManager: "AWS" } })
      mockRdsCopies(mocks.destinationRds, DESTINATION_KEY_ARN, "instances")
      // Act
      const result = yield* replicateDbSnapshot(dbJob()).pipe(Effect.provide(mocks.layer))
      // Assess
      assert.strictEqual(result._tag, "Failed")
      assert.match(result.outcome.reason ?? "", /default key aws\/rds, which can't be shared with account 222222222222; fix: /)
      assert.strictEqual(mocks.sourceRds.commandCalls(ModifyDBSnapshotAttributeCommand).length, 0)
      assert.strictEqual(mocks.destinationRds.commandCalls(CopyDBSnapshotCommand).length, 0)
      assert.strictEqual(mocks.stagingRds.commandCalls(CopyDBSnapshotCommand).length, 0)
    })
  )

  it("turns AWS Backup's snapshot names into valid DB snapshot identifiers, in lower case as RDS keeps them", () => {
    // Act
    const names = [dbSnapshotIdentifier("dr", "awsbackup:job-12ab--34"), dbSnapshotIdentifier("dr", `x${"-".repeat(300)}`), dbSnapshotIdentifier("dr", "AwsBackup:Job-12AB")]
    // Assess
    assert.deepStrictEqual(names, ["dr-awsbackup-job-12ab-34", "dr-x", "dr-awsbackup-job-12ab"])
  })
})
