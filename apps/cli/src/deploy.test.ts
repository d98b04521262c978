import { Duration, type CfnElement } from "aws-cdk-lib"
import { Match } from "aws-cdk-lib/assertions"
import { assert, describe, it } from "@effect/vitest"
import { ownershipTagProblems, roleStatements, synthesizeService, taskCoverageProblems, testDeployConfig, testImage } from "@backup-actions/deploy/testing"
import { drillStack } from "./deploy"

const policy = {
  rules: [
    { name: "ebs", match: { resourceTypes: ["EBS"] }, archive: { mode: "volume" } },
    { name: "dynamodb", match: { resourceTypes: ["DynamoDB"] }, export: { mode: "parquet" } }
  ],
  drill: { every: "7d" }
}

describe("the restore drill's stack", () => {
  const config = testDeployConfig({ policy })
  const { stack, template, nag } = synthesizeService((app) => drillStack(app, config, { image: testImage() }))
  const taskRoleId = stack.getLogicalId(stack.role.node.defaultChild as CfnElement)
  const allowed = roleStatements(template, taskRoleId).flatMap((statement) => statement.actions)

  it("runs the CLI's drill daily in the core cluster's private subnets, as an EcsRunTask target of EventBridge Scheduler", () => {
    // Assess
    template.hasResourceProperties("AWS::Scheduler::Schedule", {
      Name: "backup-actions-drill",
      ScheduleExpression: "rate(1 day)",
      Target: Match.objectLike({
        EcsParameters: Match.objectLike({
          LaunchType: "FARGATE",
          TaskCount: 1,
          TaskDefinitionArn: { Ref: Match.stringLikeRegexp("^Task") },
          NetworkConfiguration: { AwsvpcConfiguration: Match.objectLike({ AssignPublicIp: "DISABLED" }) }
        })
      })
    })
    template.hasResourceProperties("AWS::ECS::TaskDefinition", {
      RequiresCompatibilities: ["FARGATE"],
      ContainerDefinitions: [Match.objectLike({ Command: ["drill"], EntryPoint: Match.arrayWith(["timeout", "node", "main.js"]) })]
    })
  })

  it("stops a run before the next one starts, and keeps its logs like the services'", () => {
    // Assess
    template.hasResourceProperties("AWS::ECS::TaskDefinition", {
      ContainerDefinitions: [Match.objectLike({ EntryPoint: Match.arrayWith([`${23 * 3_600}s`]), StopTimeout: 120 })]
    })
    template.hasResourceProperties("AWS::Logs::LogGroup", { RetentionInDays: 90 })
    assert.throws(() => synthesizeService((app) => drillStack(app, config, { image: testImage(), every: Duration.hours(6), timeLimit: Duration.hours(6) })))
  })

  it("gives the task the stack's names and the configured policy, as the services get them", () => {
    // Assess
    template.hasResourceProperties("AWS::ECS::TaskDefinition", {
      ContainerDefinitions: [
        Match.objectLike({
          Environment: Match.arrayWith([
            { Name: "AWS_REGION", Value: "eu-west-1" },
            Match.objectLike({ Name: "BACKUP_ACTIONS_BUS" }),
            { Name: "BACKUP_ACTIONS_BUCKET", Value: "backup-actions-artifacts-111122223333-eu-west-1" },
            { Name: "BACKUP_ACTIONS_LEDGER_TABLE", Value: "backup-actions-ledger" },
            { Name: "BACKUP_ACTIONS_POLICY", Value: JSON.stringify(config.policy) }
          ])
        })
      ]
    })
  })

  it("refuses to schedule drills for a policy that asks for none", () => {
    // Act and Assess
    assert.throws(() => synthesizeService((app) => drillStack(app, testDeployConfig(), { image: testImage() })), /policy\.drill\.every/)
  })

  it("allows the restores' calls into scratch and the drills' records, and neither deleting an artifact nor touching a volume", () => {
    // Assess
    for (const action of [
      "s3:GetObject",
      "s3:RestoreObject",
      "ebs:StartSnapshot",
      "ebs:PutSnapshotBlock",
      "ebs:CompleteSnapshot",
      "ebs:ListSnapshotBlocks",
      "ebs:GetSnapshotBlock",
      "ec2:DescribeSnapshots",
      "ec2:DeleteSnapshot",
      "ec2:CreateTags",
      "ec2:RegisterImage",
      "ec2:DescribeImages",
      "ec2:DeregisterImage",
      "ec2:CreateRestoreImageTask",
      "dynamodb:CreateTable",
      "dynamodb:DescribeTable",
      "dynamodb:BatchWriteItem",
      "dynamodb:Scan",
      "dynamodb:DeleteTable",
      "dynamodb:Query",
      "dynamodb:GetItem",
      "dynamodb:PutItem",
      "kms:DescribeKey",
      "kms:CreateGrant"
    ]) {
      assert.include(allowed, action)
    }
    for (const action of ["s3:DeleteObject", "s3:PutObject", "ec2:DeleteVolume", "ec2:CreateVolume", "ec2:AttachVolume", "dynamodb:DeleteItem", "backup:DeleteRecoveryPoint"]) {
      assert.notInclude(allowed, action)
    }
    assert.deepStrictEqual(
      allowed.filter((action) => action.includes("*")),
      []
    )
  })

  it("deletes only what a restore of the project's artifacts made, and tags only as a restore creates", () => {
    // Assess
    const statements = roleStatements(template, taskRoleId)
    for (const statement of statements.filter((candidate) => candidate.actions.some((action) => /:(Delete|Deregister)/.test(action)))) {
      assert.deepStrictEqual(Object.keys(statement.condition["StringLike"] ?? {}), ["aws:ResourceTag/backup-actions:restored-from"])
    }
    for (const statement of statements.filter((candidate) => candidate.actions.includes("ec2:CreateTags"))) {
      assert.containsAllKeys(statement.condition["StringEquals"] ?? {}, ["ec2:CreateAction"])
    }
    assert.deepStrictEqual(ownershipTagProblems(template), [])
  })

  it("allows every AWS call the drill can make, from the command through the restores it runs", () => {
    // Act
    const problems = taskCoverageProblems(stack, { label: "drill", entries: ["apps/cli/src/drill/command.ts"], resources: { ledger: stack.ledger.tableArn }, template })
    // Assess
    assert.deepStrictEqual(problems, [])
  })

  it("lets the scheduler start only the drill's task in the core cluster and pass only its roles to ECS", () => {
    // Assess
    template.hasResourceProperties("AWS::IAM::Policy", {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Action: "ecs:RunTask", Resource: { Ref: Match.stringLikeRegexp("^Task") }, Condition: { ArnEquals: { "ecs:cluster": Match.anyValue() } } }),
          Match.objectLike({ Action: "iam:PassRole", Condition: { StringEquals: { "iam:PassedToService": "ecs-tasks.amazonaws.com" } } })
        ])
      }
    })
  })

  it("passes the AwsSolutions checks with only acknowledged findings", () => {
    // Act and Assess
    assert.doesNotThrow(nag)
  })
})
