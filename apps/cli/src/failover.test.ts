import { assert, describe, it, vi } from "@effect/vitest"
import {
  CreateDBInstanceCommand,
  DescribeDBClusterSnapshotsCommand,
  DescribeDBClustersCommand,
  DescribeDBInstancesCommand,
  DescribeDBSnapshotsCommand,
  RDSClient,
  RestoreDBClusterFromSnapshotCommand,
  RestoreDBInstanceFromDBSnapshotCommand
} from "@aws-sdk/client-rds"
import { AssumeRoleCommand, STSClient } from "@aws-sdk/client-sts"
import { mockClient } from "aws-sdk-client-mock"
import { Effect, Either, Layer, Option, Schema, TestClock } from "effect"
import { AwsConfig } from "@backup-actions/aws"
import { FailoverResult } from "@backup-actions/contracts"
import { parseCommandLine, parseFailoverSource } from "./args"
import { FailoverAccess, failoverCommand } from "./failover/command"
import { describeAge } from "./failover/output"
import type { FailoverRequest } from "./failover/request"
import { defaultInstanceId } from "./failover/restore"
import { Progress } from "./progress"

const messageOf = (argv: ReadonlyArray<string>): string =>
  Either.match(parseCommandLine(argv), { onLeft: (error) => error.message, onRight: () => "accepted" })

/** The failover a command line asks for. */
const requestOf = (...argv: ReadonlyArray<string>): FailoverRequest => {
  const command = Either.getOrThrow(parseCommandLine(["failover", ...argv])).command
  if (command._tag !== "Failover") throw new Error(`not a failover: ${command._tag}`)
  return command
}

/** The caller's own account in us-east-1, with test credentials, no progress, and the failover's access to other accounts. */
const failoverEnvironment = Layer.mergeAll(FailoverAccess, Progress.layer(process.stderr, false)).pipe(
  Layer.provideMerge(AwsConfig.layer({ region: "us-east-1", connectTimeoutMs: 1_000, requestTimeoutMs: 1_000, maxSockets: 4, credentials: Option.some({ accessKeyId: "test", secretAccessKey: "test" }) }))
)

/** Every client of the class answers as the mock says, until the scope closes. */
const mockedClass = <C extends typeof RDSClient | typeof STSClient>(client: C) =>
  Effect.acquireRelease(
    Effect.sync(() => mockClient(client)),
    (mock) => Effect.sync(() => mock.restore())
  )

/** What the effect wrote to stdout, line by line. */
const stdoutOf = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function* () {
    const log = yield* Effect.acquireRelease(
      Effect.sync(() => vi.spyOn(console, "log").mockImplementation(() => undefined)),
      (spy) => Effect.sync(() => spy.mockRestore())
    )
    yield* effect
    return log.mock.calls.map((call) => call.map(String).join(" ")).join("\n")
  })

describe("the failover command line", () => {
  it("reads a DB instance source with its defaults, and a snapshot source by the tag its replicas carry", () => {
    // Act
    const parsed = parseCommandLine(["failover", "--source", "arn:aws:rds:us-east-1:123456789012:db:orders", "--region", "us-west-2"])
    const snapshot = parseFailoverSource("arn:aws:ec2:us-east-1::snapshot/snap-0123456789abcdef0")
    // Assess
    assert.isTrue(Either.isRight(parsed))
    const command = Either.isRight(parsed) ? parsed.right.command : undefined
    assert.deepInclude(command, {
      _tag: "Failover",
      instanceClass: "db.t4g.micro",
      region: "us-west-2",
      newInstanceId: undefined,
      dbSubnetGroup: undefined,
      securityGroupIds: [],
      json: false
    })
    assert.deepStrictEqual(command?._tag === "Failover" ? command.source : undefined, {
      arn: "arn:aws:rds:us-east-1:123456789012:db:orders",
      kind: "RDS",
      matchTag: "backup-actions:source-resource",
      resourceId: "orders"
    })
    assert.deepStrictEqual(Either.getOrUndefined(snapshot)?.matchTag, "backup-actions:source-arn")
  })

  it("reads an Aurora cluster source by the tag its replicas carry, with a writer class Aurora runs, and a cluster snapshot source by its own ARN", () => {
    // Act
    const parsed = parseCommandLine(["failover", "--source", "arn:aws:rds:us-east-1:123456789012:cluster:ledger", "--db-subnet-group", "pilot-light"])
    const snapshot = parseFailoverSource("arn:aws:rds:us-east-1:123456789012:cluster-snapshot:awsbackup:job-0001")
    // Assess
    const command = Either.isRight(parsed) ? parsed.right.command : undefined
    assert.deepInclude(command, { _tag: "Failover", instanceClass: "db.t4g.medium", dbSubnetGroup: "pilot-light" })
    assert.deepStrictEqual(command?._tag === "Failover" ? command.source : undefined, {
      arn: "arn:aws:rds:us-east-1:123456789012:cluster:ledger",
      kind: "Aurora",
      matchTag: "backup-actions:source-resource",
      resourceId: "ledger"
    })
    assert.deepStrictEqual(Either.getOrUndefined(snapshot), {
      arn: "arn:aws:rds:us-east-1:123456789012:cluster-snapshot:awsbackup:job-0001",
      kind: "Aurora",
      matchTag: "backup-actions:source-arn",
      resourceId: undefined
    })
  })

  it("refuses a new cluster id that leaves no room for its writer's name, which a DB instance may still use", () => {
    // Prepare
    const id = `a${"b".repeat(56)}`
    // Act
    const cluster = messageOf(["failover", "--source", "arn:aws:rds:us-east-1:123456789012:cluster:ledger", "--new-instance-id", id])
    const instance = messageOf(["failover", "--source", "arn:aws:rds:us-east-1:123456789012:db:orders", "--new-instance-id", id])
    // Assess
    assert.include(cluster, `--new-instance-id "${id}" is not a DB cluster identifier`)
    assert.include(cluster, "at most 56")
    assert.strictEqual(instance, "accepted")
  })

  it("refuses a missing or unknown source, an EBS source without a zone or with a DB network, an external id without a role, a bad instance id and a bad security group", () => {
    // Act
    const messages = [
      messageOf(["failover"]),
      messageOf(["failover", "--source", "arn:aws:s3:::bucket"]),
      messageOf(["failover", "--source", "arn:aws:ec2:us-east-1:123456789012:volume/vol-0123456789abcdef0"]),
      messageOf(["failover", "--source", "arn:aws:rds:us-east-1:123456789012:db:orders", "--external-id", "x"]),
      messageOf(["failover", "--source", "arn:aws:rds:us-east-1:123456789012:db:orders", "--new-instance-id", "1-bad"]),
      messageOf(["failover", "--source", "arn:aws:rds:us-east-1:123456789012:db:orders", "--security-group-ids", "sg-0123456789abcdef0,default"]),
      messageOf(["failover", "--source", "arn:aws:ec2:us-east-1:123456789012:volume/vol-0123456789abcdef0", "--zone", "us-east-1a", "--db-subnet-group", "dr"])
    ]
    // Assess
    assert.include(messages[0], "--source <arn")
    assert.include(messages[1], "is neither a DB instance or DB snapshot ARN")
    assert.include(messages[1], "an Aurora DB cluster or cluster snapshot ARN")
    assert.include(messages[2], "needs --zone")
    assert.include(messages[3], "--external-id is only used with --role-arn")
    assert.include(messages[4], "is not a DB instance identifier")
    assert.include(messages[5], '"default" is not a security group id')
    assert.include(messages[6], "are for a DB instance or cluster")
  })

  it("names a new DB instance or cluster after the source and the time, within the identifier's rules and leaving a cluster room for its writer's name", () => {
    // Prepare
    const source = Either.getOrThrow(parseFailoverSource(`arn:aws:rds:us-east-1:123456789012:db:${"a".repeat(60)}`))
    const cluster = Either.getOrThrow(parseFailoverSource(`arn:aws:rds:us-east-1:123456789012:cluster:${"a".repeat(60)}`))
    // Act
    const id = defaultInstanceId(source, Date.parse("2026-11-22T10:15:00Z"))
    const clusterId = defaultInstanceId(cluster, Date.parse("2026-11-22T10:15:00Z"))
    // Assess
    assert.strictEqual(id.length, 63)
    assert.match(id, /^failover-a+-202611221015$/)
    assert.strictEqual(clusterId.length, 56)
    assert.match(clusterId, /^failover-a+-202611221015$/)
    assert.strictEqual(describeAge(3723), "1h 02m 03s")
  })
})

describe("the failover of an Aurora cluster", () => {
  it.scoped("restores the newest replica with its engine in the network asked for, and names the cluster it left when its writer can't be created", () =>
    Effect.gen(function* () {
      // Prepare: a cluster snapshot replica of the sharer, and an RDS that refuses the writer
      const rds = yield* mockedClass(RDSClient)
      const replicaArn = "arn:aws:rds:us-west-2:123456789012:cluster-snapshot:dr-awsbackup-job-ledger-1"
      const sourceArn = "arn:aws:rds:us-east-1:123456789012:cluster:ledger"
      rds.on(DescribeDBClusterSnapshotsCommand).resolves({
        DBClusterSnapshots: [
          {
            DBClusterSnapshotIdentifier: "dr-awsbackup-job-ledger-1",
            DBClusterSnapshotArn: replicaArn,
            Status: "available",
            Engine: "aurora-mysql",
            TagList: [
              { Key: "backup-actions:managed-by", Value: "sharer" },
              { Key: "backup-actions:source-resource", Value: sourceArn }
            ]
          }
        ]
      })
      rds.on(RestoreDBClusterFromSnapshotCommand).resolves({ DBCluster: { DBClusterIdentifier: "ledger-dr", Status: "creating" } })
      rds.on(DescribeDBClustersCommand).resolves({ DBClusters: [{ DBClusterIdentifier: "ledger-dr", Status: "available", Engine: "aurora-mysql" }] })
      rds.on(CreateDBInstanceCommand).rejects(Object.assign(new Error("db.t4g.medium is not offered here"), { name: "InvalidParameterCombination" }))
      const request = requestOf(
        ...["--source", sourceArn, "--region", "us-west-2", "--new-instance-id", "ledger-dr"],
        ...["--db-subnet-group", "pilot-light", "--security-group-ids", "sg-0123456789abcdef0"]
      )
      // Act
      const failure = yield* failoverCommand(request).pipe(Effect.provide(failoverEnvironment), Effect.flip)
      // Assess
      const listed = rds.commandCalls(DescribeDBClusterSnapshotsCommand)[0]?.args[0].input
      assert.deepStrictEqual(listed?.Filters, [{ Name: "db-cluster-id", Values: ["ledger"] }])
      assert.deepInclude(rds.commandCalls(RestoreDBClusterFromSnapshotCommand)[0]?.args[0].input, {
        DBClusterIdentifier: "ledger-dr",
        SnapshotIdentifier: "dr-awsbackup-job-ledger-1",
        Engine: "aurora-mysql",
        DBSubnetGroupName: "pilot-light",
        VpcSecurityGroupIds: ["sg-0123456789abcdef0"]
      })
      assert.deepInclude(rds.commandCalls(CreateDBInstanceCommand)[0]?.args[0].input, {
        DBInstanceIdentifier: "ledger-dr-writer",
        DBClusterIdentifier: "ledger-dr",
        DBInstanceClass: "db.t4g.medium",
        Engine: "aurora-mysql"
      })
      assert.strictEqual(failure._tag, "OperationFailed")
      assert.include(failure.message, `DB cluster ledger-dr was restored from ${replicaArn} and left as it is, but its writer ledger-dr-writer could not be created`)
    })
  )
})

describe("the failover of a DB instance", () => {
  it.scoped("prints one JSON object that decodes as a FailoverResult: the newest replica, the instance restored from it, its endpoint and the RPO from the source snapshot", () =>
    Effect.gen(function* () {
      // Prepare: two replicas of the sharer, the newer taken at 10:00; an RDS that makes the instance available at once
      const rds = yield* mockedClass(RDSClient)
      const sourceArn = "arn:aws:rds:us-east-1:123456789012:db:orders"
      const replica = (id: string, sourceTakenAt: string) => ({
        DBSnapshotIdentifier: id,
        DBSnapshotArn: `arn:aws:rds:us-west-2:123456789012:snapshot:${id}`,
        Status: "available",
        Engine: "postgres",
        TagList: [
          { Key: "backup-actions:managed-by", Value: "sharer" },
          { Key: "backup-actions:source-resource", Value: sourceArn },
          { Key: "backup-actions:source-created-at", Value: sourceTakenAt }
        ]
      })
      rds.on(DescribeDBSnapshotsCommand).resolves({ DBSnapshots: [replica("dr-orders-1", "2026-11-22T09:00:00.000Z"), replica("dr-orders-2", "2026-11-22T10:00:00.000Z")] })
      rds.on(RestoreDBInstanceFromDBSnapshotCommand).resolves({ DBInstance: { DBInstanceIdentifier: "orders-dr", DBInstanceStatus: "creating" } })
      rds.on(DescribeDBInstancesCommand).resolves({
        DBInstances: [{ DBInstanceIdentifier: "orders-dr", DBInstanceStatus: "available", Endpoint: { Address: "orders-dr.example.us-west-2.rds.amazonaws.com", Port: 5432 } }]
      })
      yield* TestClock.setTime(Date.parse("2026-11-22T10:12:34Z"))
      const request = requestOf("--source", sourceArn, "--region", "us-west-2", "--new-instance-id", "orders-dr", "--json")
      // Act
      const printed = yield* stdoutOf(failoverCommand(request).pipe(Effect.provide(failoverEnvironment)))
      // Assess
      const reported = yield* Schema.decodeUnknown(Schema.parseJson(FailoverResult))(printed)
      assert.deepStrictEqual(reported, {
        source: sourceArn,
        region: "us-west-2",
        replica: { id: "dr-orders-2", arn: "arn:aws:rds:us-west-2:123456789012:snapshot:dr-orders-2", sourceTakenAt: "2026-11-22T10:00:00.000Z" },
        restored: { kind: "db-instance", id: "orders-dr", status: "available", endpoint: "orders-dr.example.us-west-2.rds.amazonaws.com:5432" },
        rpoSeconds: 754,
        rpoFrom: "source snapshot"
      })
      assert.deepInclude(rds.commandCalls(RestoreDBInstanceFromDBSnapshotCommand)[0]?.args[0].input, { DBInstanceIdentifier: "orders-dr", DBSnapshotIdentifier: "dr-orders-2", DBInstanceClass: "db.t4g.micro" })
    })
  )

  it.scoped("fails with STS's own answer, before it looks for a replica, when the DR role cannot be assumed", () =>
    Effect.gen(function* () {
      // Prepare
      const sts = yield* mockedClass(STSClient)
      const rds = yield* mockedClass(RDSClient)
      sts.on(AssumeRoleCommand).rejects(Object.assign(new Error("not authorized to perform sts:AssumeRole"), { name: "AccessDenied", $metadata: { httpStatusCode: 403 } }))
      const roleArn = "arn:aws:iam::222222222222:role/backup-actions-dr-replicator"
      const request = requestOf("--source", "arn:aws:rds:us-east-1:123456789012:db:orders", "--region", "us-west-2", "--role-arn", roleArn, "--external-id", "dr")
      // Act
      const failure = yield* failoverCommand(request).pipe(Effect.provide(failoverEnvironment), Effect.flip)
      // Assess
      assert.strictEqual(failure._tag, "AwsError")
      assert.strictEqual(failure._tag === "AwsError" ? failure.code : undefined, "AccessDenied")
      assert.deepInclude(sts.commandCalls(AssumeRoleCommand)[0]?.args[0].input, { RoleArn: roleArn, RoleSessionName: "backup-actions-failover", ExternalId: "dr" })
      assert.lengthOf(rds.calls(), 0)
    })
  )
})
