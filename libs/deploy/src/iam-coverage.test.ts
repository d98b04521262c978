import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { App, Duration, Stack } from "aws-cdk-lib"
import { Template } from "aws-cdk-lib/assertions"
import * as ecs from "aws-cdk-lib/aws-ecs"
import * as iam from "aws-cdk-lib/aws-iam"
import { afterAll, assert, describe, it } from "@effect/vitest"
import { iamCoverageProblems, iamRequirementsOf, ownershipTagProblems, runtimeCalls, taskCoverageProblems, type AwsCallSite, type IamRequirement } from "./iam-coverage"
import { ServiceStack } from "./service-stack"
import { testDeployConfig, testImage } from "./test-support"

const call = (operation: string, request = "(abortSignal) => client.send(command, { abortSignal })", context = ""): AwsCallSite => ({
  operation,
  file: "apps/example/src/example.ts",
  line: 1,
  scope: "example",
  request,
  context
})

const actionsOf = (site: AwsCallSite): ReadonlyArray<IamRequirement> => {
  const needs = iamRequirementsOf(site)
  return needs._tag === "Actions" ? needs.requirements : []
}

describe("the IAM actions of an AWS call", () => {
  it("authorizes multipart uploads and metadata reads as the object actions S3 checks", () => {
    // Act
    const actions = ["s3:CreateMultipartUpload", "s3:UploadPart", "s3:CompleteMultipartUpload", "s3:ListParts", "s3:HeadObject", "s3:DeleteObjects"].map((operation) =>
      actionsOf(call(operation)).map((requirement) => requirement.action)
    )
    // Assess
    assert.deepStrictEqual(actions, [["s3:PutObject"], ["s3:PutObject"], ["s3:PutObject"], ["s3:ListMultipartUploadParts"], ["s3:GetObject"], ["s3:DeleteObject"]])
  })

  it("authorizes a transaction by the kinds of item it writes, and tags on creation by what creates them", () => {
    // Act
    const transaction = actionsOf(call("dynamodb:TransactWriteItems", "new TransactWriteItemsCommand({ TransactItems: [{ Put: {} }, { ConditionCheck: {} }] })"))
    const volume = actionsOf(call("ec2:CreateVolume", "new CreateVolumeCommand({ ClientToken: token, TagSpecifications: [] })"))
    const untagged = actionsOf(call("ec2:CreateVolume", "new CreateVolumeCommand({ SnapshotId: id })"))
    // Assess
    assert.deepStrictEqual(transaction, [{ action: "dynamodb:PutItem" }, { action: "dynamodb:ConditionCheckItem" }])
    assert.deepStrictEqual(volume, [{ action: "ec2:CreateVolume" }, { action: "ec2:CreateTags", onCreationBy: "CreateVolume" }])
    assert.deepStrictEqual(untagged, [{ action: "ec2:CreateVolume" }])
  })

  it("names the stack's queue, DLQ or ledger when the request names them from the settings", () => {
    // Act
    const deferred = actionsOf(call("sqs:SendMessage", "new SendMessageCommand({ QueueUrl: settings.queueUrl, MessageBody: body })"))
    const deadLettered = actionsOf(call("sqs:SendMessage", "new SendMessageCommand({ QueueUrl: settings.deadLetterQueueUrl })"))
    const elsewhere = actionsOf(call("sqs:SendMessage", "new SendMessageCommand({ QueueUrl: url })"))
    // Assess
    assert.deepStrictEqual(deferred, [{ action: "sqs:SendMessage", resource: "queue" }])
    assert.deepStrictEqual(deadLettered, [{ action: "sqs:SendMessage", resource: "deadLetterQueue" }])
    assert.deepStrictEqual(elsewhere, [{ action: "sqs:SendMessage" }])
  })

  it("asks for ListBucket where a missing object is an answer, since S3 otherwise says 403", () => {
    // Act
    const probe = actionsOf(call("s3:HeadObject", "new HeadObjectCommand(input)", 'objectExists = … Effect.catchIf((error) => error.kind === "not-found", …)'))
    // Assess
    assert.deepStrictEqual(probe, [{ action: "s3:GetObject" }, { action: "s3:ListBucket" }])
  })

  it("authorizes a store-image restore as the object read and the EBS direct writes EC2 makes as the caller, and its tags by what creates them", () => {
    // Act
    const actions = actionsOf(call("ec2:CreateRestoreImageTask", "new CreateRestoreImageTaskCommand({ Bucket: bucket, ObjectKey: key, TagSpecifications: [] })"))
    // Assess
    assert.deepStrictEqual(actions, [
      { action: "ec2:CreateRestoreImageTask" },
      { action: "s3:GetObject" },
      { action: "ebs:StartSnapshot" },
      { action: "ebs:PutSnapshotBlock" },
      { action: "ebs:CompleteSnapshot" },
      { action: "ec2:CreateTags", onCreationBy: "CreateRestoreImageTask" }
    ])
  })

  it("refuses a name whose prefix is no AWS service", () => {
    // Act
    const needs = iamRequirementsOf(call("ledger:decode"))
    // Assess
    assert.strictEqual(needs._tag, "Unmapped")
  })
})

describe("the AWS calls a runtime can make", () => {
  const root = mkdtempSync(join(tmpdir(), "iam-coverage-"))
  const write = (path: string, text: string) => {
    mkdirSync(dirname(join(root, path)), { recursive: true })
    writeFileSync(join(root, path), text)
  }
  afterAll(() => rmSync(root, { recursive: true, force: true }))

  it("follows a library's re-exports only to the module that defines what is imported, reading no comments and no type-only imports", () => {
    // Prepare
    write("package.json", JSON.stringify({ workspaces: ["libs/*", "apps/*"] }))
    write("libs/kit/package.json", JSON.stringify({ name: "@example/kit", exports: { ".": "./src/index.ts" } }))
    write("libs/kit/src/index.ts", 'export * from "./read"\nexport { remove as removeSnapshot } from "./remove"\nexport type { Shape } from "./shape"\n')
    write("libs/kit/src/read.ts", '/** Like awsCall("sqs:Nothing", …) */\nexport const read = () => awsCall("s3:GetObject", run)\n')
    write("libs/kit/src/remove.ts", 'export const remove = () => awsCall("ec2:DeleteSnapshot", run)\n')
    write("libs/kit/src/shape.ts", 'export interface Shape { readonly operation: "rds:DeleteDBInstance" }\n')
    write("apps/example/src/main.ts", 'import { read, type Shape } from "@example/kit"\nimport { send } from "./send"\nread()\nsend()\n')
    write("apps/example/src/send.ts", 'export const send = () =>\n  awsCall(\n    "sqs:SendMessage",\n    run\n  )\n')
    // Act
    const found = runtimeCalls(root, ["apps/example/src/main.ts"])
    // Assess
    assert.deepStrictEqual(found.calls.map((site) => site.operation).sort(), ["s3:GetObject", "sqs:SendMessage"])
    assert.deepStrictEqual(found.files, ["apps/example/src/main.ts", "apps/example/src/send.ts", "libs/kit/src/read.ts"])
    assert.deepStrictEqual(found.unknown, [])
  })
})

describe("the IAM checks of a service stack", () => {
  it("finds a consumer that may dead-letter but not put a deferred message back on its own queue", () => {
    // Prepare
    const stack = new ServiceStack(new App(), "Example", { config: testDeployConfig(), service: "reporter", visibilityTimeout: Duration.minutes(1) })
    const role = new iam.Role(stack, "TaskRole", { assumedBy: new iam.ServicePrincipal("ecs-tasks.amazonaws.com") })
    new ecs.FargateTaskDefinition(stack, "Task", { taskRole: role }).addContainer("Consumer", { image: testImage(), memoryLimitMiB: 512 })
    stack.allow(role, ["sqs:SendMessage"], [stack.delivery.deadLetterQueue.queueArn])
    const calls = [
      { ...call("sqs:SendMessage", "new SendMessageCommand({ QueueUrl: settings.deadLetterQueueUrl })"), scope: "deadLetter" },
      { ...call("sqs:SendMessage", "new SendMessageCommand({ QueueUrl: settings.queueUrl })"), scope: "deferMessage" }
    ]
    // Act
    const problems = iamCoverageProblems(stack, { calls })
    // Assess
    assert.strictEqual(problems.length, 1)
    assert.match(problems[0] ?? "", /^reporter: TaskRole\w+ may not sqs:SendMessage on its queue \(sqs:SendMessage at apps\/example\/src\/example\.ts:1\)$/)
  })

  it("finds a scheduled task that may not write its ledger, and a request naming a resource its stack does not have", () => {
    // Prepare
    const stack = new Stack(new App(), "Task", { env: { account: "111122223333", region: "eu-west-1" } })
    const role = new iam.Role(stack, "TaskRole", { assumedBy: new iam.ServicePrincipal("ecs-tasks.amazonaws.com") })
    new ecs.FargateTaskDefinition(stack, "Task", { taskRole: role }).addContainer("Main", { image: testImage(), memoryLimitMiB: 512 })
    const ledger = "arn:aws:dynamodb:eu-west-1:111122223333:table/backup-actions-ledger"
    role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ["dynamodb:Query"], resources: [ledger] }))
    const calls = [
      call("dynamodb:Query", "new QueryCommand({ TableName: ledgerTable })"),
      call("dynamodb:PutItem", "new PutItemCommand({ TableName: ledgerTable, Item: item })"),
      call("sqs:SendMessage", "new SendMessageCommand({ QueueUrl: settings.queueUrl })")
    ]
    // Act
    const problems = taskCoverageProblems(stack, { label: "task", entries: [], resources: { ledger }, calls })
    // Assess
    assert.strictEqual(problems.length, 2)
    assert.match(problems[0] ?? "", /^task: TaskRole\w+ may not dynamodb:PutItem on its ledger \(dynamodb:PutItem at apps\/example\/src\/example\.ts:1\)$/)
    assert.strictEqual(problems[1], "task: sqs:SendMessage at apps/example/src/example.ts:1 names its queue, which the stack does not have")
  })

  it("finds a role that may tag any existing DB instance with the tag its deletes are conditioned on, and accepts tagging on creation or by name", () => {
    // Prepare
    const stack = new Stack(new App(), "Tags")
    const role = new iam.Role(stack, "Role", { assumedBy: new iam.ServicePrincipal("ecs-tasks.amazonaws.com") })
    const allow = (actions: ReadonlyArray<string>, resources: ReadonlyArray<string>, conditions?: Record<string, Record<string, unknown>>) =>
      role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: [...actions], resources: [...resources], ...(conditions === undefined ? {} : { conditions }) }))
    allow(["rds:RestoreDBInstanceFromDBSnapshot", "rds:AddTagsToResource"], ["arn:aws:rds:eu-west-1:111122223333:db:*"], { StringEquals: { "aws:RequestTag/backup-actions:managed": "true" } })
    allow(["rds:DeleteDBInstance"], ["arn:aws:rds:eu-west-1:111122223333:db:*"], { StringEquals: { "aws:ResourceTag/backup-actions:managed": "true" } })
    allow(["ec2:CreateTags"], ["arn:aws:ec2:eu-west-1:111122223333:volume/*"], { StringEquals: { "ec2:CreateAction": "CreateVolume" } })
    allow(["ec2:DeleteVolume"], ["arn:aws:ec2:eu-west-1:111122223333:volume/*"], { StringEquals: { "ec2:ResourceTag/backup-actions:managed": "true" } })
    allow(["dynamodb:TagResource"], ["arn:aws:dynamodb:eu-west-1:111122223333:table/backup-actions-export-*"])
    allow(["dynamodb:DeleteTable"], ["arn:aws:dynamodb:eu-west-1:111122223333:table/backup-actions-export-*"], { StringEquals: { "aws:ResourceTag/backup-actions:managed": "true" } })
    // Act
    const problems = ownershipTagProblems(Template.fromStack(stack))
    // Assess
    assert.deepStrictEqual(problems.map((problem) => problem.replace(/^Role\w+: /, "")), [
      "rds:AddTagsToResource on arn:aws:rds:eu-west-1:111122223333:db:* can put backup-actions:managed on any existing db, and rds:DeleteDBInstance trusts that tag"
    ])
  })
})
