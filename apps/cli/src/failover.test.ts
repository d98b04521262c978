import { assert, describe, it } from "@effect/vitest"
import { Either } from "effect"
import { parseCommandLine } from "./args"
import { defaultInstanceId, describeAge, parseFailoverSource } from "./failover"

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
      instanceId: "orders"
    })
    assert.deepStrictEqual(Either.getOrUndefined(snapshot)?.matchTag, "backup-actions:source-arn")
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
    assert.include(messages[2], "needs --zone")
    assert.include(messages[3], "--external-id is only used with --role-arn")
    assert.include(messages[4], "is not a DB instance identifier")
    assert.include(messages[5], '"default" is not a security group id')
    assert.include(messages[6], "are for a DB instance")
  })

  it("names a new DB instance after the source and the time, within the identifier's rules", () => {
    // Prepare
    const source = Either.getOrThrow(parseFailoverSource(`arn:aws:rds:us-east-1:123456789012:db:${"a".repeat(60)}`))
    // Act
    const id = defaultInstanceId(source, Date.parse("2026-11-22T10:15:00Z"))
    // Assess
    assert.isAtMost(id.length, 63)
    assert.match(id, /^failover-a+-202611221015$/)
    assert.strictEqual(describeAge(3723), "1h 02m 03s")
  })
})
