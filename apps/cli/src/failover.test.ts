import { assert, describe, it } from "@effect/vitest"
import { CreateDBInstanceCommand, DescribeDBClusterSnapshotsCommand, DescribeDBClustersCommand, RDSClient, RestoreDBClusterFromSnapshotCommand } from "@aws-sdk/client-rds"
import { mockClient } from "aws-sdk-client-mock"
import { Effect, Either, Layer, Option } from "effect"
import { AwsConfig } from "@backup-actions/aws"
import { parseCommandLine } from "./args"
import { defaultInstanceId, describeAge, failoverCommand, failoverCommandOf, parseFailoverSource } from "./failover"
import { Progress } from "./progress"

const messageOf = (argv: ReadonlyArray<string>): string =>
  Either.match(parseCommandLine(argv), { onLeft: (error) => error.message, onRight: () => "accepted" })

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
      const rds = yield* Effect.acquireRelease(
        Effect.sync(() => mockClient(RDSClient)),
        (mock) => Effect.sync(() => mock.restore())
      )
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
      const command = Either.getOrThrow(
        failoverCommandOf({ source: sourceArn, region: "us-west-2", "new-instance-id": "ledger-dr", "db-subnet-group": "pilot-light", "security-group-ids": "sg-0123456789abcdef0" })
      )
      const settings = { region: "us-east-1", endpoint: Option.none(), connectTimeoutMs: 1_000, requestTimeoutMs: 1_000, maxSockets: 4, credentials: Option.some({ accessKeyId: "test", secretAccessKey: "test" }) }
      // Act
      const failure = yield* failoverCommand(command).pipe(
        Effect.provide(Layer.merge(Layer.succeed(AwsConfig, settings), Progress.layer(process.stderr, false))),
        Effect.flip
      )
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
