import { assert, describe, it } from "@effect/vitest"
import { Either } from "effect"
import { parseCommandLine } from "./args"
import { describeError } from "./errors"

const parsed = (...argv: ReadonlyArray<string>) => parseCommandLine(argv)
const usageMessage = (...argv: ReadonlyArray<string>): string => {
  const result = parseCommandLine(argv)
  return Either.isLeft(result) ? result.left.message : "(parsed)"
}

describe("the command line", () => {
  it("reads a status with a recovery point and --json, and the stack file", () => {
    // Act
    const result = parsed("status", "--recovery-point", "arn:aws:ec2:us-east-1::snapshot/snap-1", "--json", "--stack", ".local/stack.json")
    // Assess
    assert.deepStrictEqual(Either.getOrUndefined(result), {
      command: { _tag: "Status", recoveryPoint: "arn:aws:ec2:us-east-1::snapshot/snap-1", json: true },
      options: { stackFile: ".local/stack.json", progress: false }
    })
  })

  it("reads a replay window as times and keeps its filters", () => {
    // Act
    const result = parsed("replay", "--from", "2026-11-22T10:00:00Z", "--to", "2026-11-22T11:00:00Z", "--type", "Archive Completed")
    // Assess
    const command = Either.getOrUndefined(result)?.command
    assert.strictEqual(command?._tag, "Replay")
    if (command?._tag !== "Replay") return
    assert.strictEqual(command.from.toISOString(), "2026-11-22T10:00:00.000Z")
    assert.strictEqual(command.to.toISOString(), "2026-11-22T11:00:00.000Z")
    assert.strictEqual(command.detailType, "Archive Completed")
    assert.isUndefined(command.recoveryPoint)
  })

  it("refuses a replay without a window, with a time that is not ISO 8601, or with the window backwards", () => {
    // Act
    const missing = usageMessage("replay", "--to", "2026-11-22T11:00:00Z")
    const notIso = usageMessage("replay", "--from", "yesterday", "--to", "2026-11-22T11:00:00Z")
    const backwards = usageMessage("replay", "--from", "2026-11-22T12:00:00Z", "--to", "2026-11-22T11:00:00Z")
    // Assess
    assert.strictEqual(missing, "--from <iso time> is required")
    assert.match(notIso, /^--from "yesterday" is not an ISO 8601 time/)
    assert.match(backwards, /^--from \(2026-11-22T12:00:00.000Z\) is after --to/)
  })

  it("tells restore where to, and refuses both destinations at once", () => {
    // Act
    const nowhere = usageMessage("restore", "s3://bucket/archives/ebs/snap-1/volume/files.tar.zst")
    const both = usageMessage("restore", "s3://bucket/archives/ebs/snap-1/volume/files.tar.zst", "--to", "out", "--to-snapshot")
    const directory = parsed("restore", "s3://bucket/archives/ebs/snap-1/volume/files.tar.zst", "--to", "out", "--progress")
    // Assess
    assert.match(nowhere, /--to <directory> for a tar archive, --to-snapshot for a raw image/)
    assert.match(both, /exclude each other/)
    assert.deepStrictEqual(Either.getOrUndefined(directory), {
      command: {
        _tag: "Restore",
        archive: { bucket: "bucket", key: "archives/ebs/snap-1/volume/files.tar.zst" },
        target: { _tag: "Directory", directory: "out" },
        tier: "Standard"
      },
      options: { stackFile: undefined, progress: true }
    })
  })

  it("takes a KMS key only with --to-snapshot and a retrieval tier by its name in any case", () => {
    // Act
    const archive = "s3://bucket/archives/ebs/snap-1/direct/disk.img.zst"
    const keyed = parsed("restore", archive, "--to-snapshot", "--kms-key", "alias/dr", "--tier", "bulk")
    const misplacedKey = usageMessage("restore", archive, "--to", "out", "--kms-key", "alias/dr")
    const badTier = usageMessage("verify", archive, "--tier", "Fast")
    const three = usageMessage("restore", archive, "--to-table", "t", "--to-database", "postgresql://h/db", "--to-image")
    // Assess
    assert.deepStrictEqual(Either.getOrUndefined(keyed)?.command, {
      _tag: "Restore",
      archive: { bucket: "bucket", key: "archives/ebs/snap-1/direct/disk.img.zst" },
      target: { _tag: "Snapshot", kmsKeyId: "alias/dr" },
      tier: "Bulk"
    })
    assert.strictEqual(misplacedKey, "--kms-key goes with --to-snapshot")
    assert.strictEqual(badTier, '--tier "Fast" is not a retrieval tier (Expedited, Standard, Bulk)')
    assert.strictEqual(three, "--to-database and --to-table and --to-image exclude each other: choose one")
  })

  it("names an unknown option, an unknown command, a bad format and a bad day", () => {
    // Act
    const option = usageMessage("status", "--recovery", "x")
    const command = usageMessage("restart")
    const format = usageMessage("report", "--format", "pdf")
    const day = usageMessage("report", "--day", "2026-02-30")
    // Assess
    assert.match(option, /--recovery/)
    assert.match(command, /^unknown command "restart"/)
    assert.match(format, /^--format must be one of text, json, csv, html, not "pdf"/)
    assert.match(day, /^--day "2026-02-30" is not a day as yyyy-mm-dd/)
  })

  it("refuses an archive that is not an s3:// URL of an object", () => {
    // Act
    const local = usageMessage("verify", "/tmp/disk.img.zst")
    const folder = usageMessage("verify", "s3://bucket/archives/")
    const two = usageMessage("verify", "s3://bucket/a", "s3://bucket/b")
    // Assess
    assert.match(local, /is not an S3 URL/)
    assert.match(folder, /names a folder/)
    assert.match(two, /one archive at a time/)
  })

  it("answers --help for every command without needing a stack", () => {
    // Act
    const help = ["status", "report", "replay", "verify", "restore", "failover"].map((command) => Either.getOrUndefined(parsed(command, "--help"))?.command)
    const main = Either.getOrUndefined(parsed())?.command
    // Assess
    for (const [index, command] of help.entries()) {
      assert.strictEqual(command?._tag, "Help")
      assert.include(command?._tag === "Help" ? command.text : "", `backup-actions ${["status", "report", "replay", "verify", "restore", "failover"][index]}`)
    }
    assert.include(main?._tag === "Help" ? main.text : "", "Commands:")
  })

  it("ends usage errors with exit code 2 and a pointer to the command's help", () => {
    // Prepare
    const result = parseCommandLine(["report", "--format", "pdf"])
    // Act
    const described = Either.isLeft(result) ? describeError(result.left) : undefined
    // Assess
    assert.strictEqual(described?.exitCode, 2)
    assert.include(described?.text ?? "", "Run `backup-actions report --help` for usage.")
  })

  it("reads a drill with its period, look-back and tier, or one artifact to drill now", () => {
    // Act
    const scheduled = Either.getOrUndefined(parsed("drill", "--every", "7d", "--days", "10", "--tier", "bulk"))?.command
    const now = Either.getOrUndefined(
      parsed(
        "drill",
        "--artifact",
        "s3://b/archives/ebs/snap-1/direct/disk.img.zst",
        "--resource",
        "arn:aws:ec2:us-east-1:1:volume/vol-1",
        "--scratch-database",
        "postgresql://drill@db-1",
        "--scratch-database",
        "mysql://drill@db-2"
      )
    )?.command
    // Assess
    assert.deepStrictEqual(scheduled, { _tag: "Drill", every: "7d", artifact: undefined, resource: undefined, days: 10, tier: "Bulk", scratchDatabases: [], json: false })
    assert.deepStrictEqual(now, {
      _tag: "Drill",
      every: undefined,
      artifact: { bucket: "b", key: "archives/ebs/snap-1/direct/disk.img.zst" },
      resource: "arn:aws:ec2:us-east-1:1:volume/vol-1",
      days: 31,
      tier: "Standard",
      scratchDatabases: ["postgresql://drill@db-1", "mysql://drill@db-2"],
      json: false
    })
  })

  it("refuses a drill period that is no period, a look-back out of range, and --resource without --artifact", () => {
    // Act
    const period = usageMessage("drill", "--every", "1 week")
    const days = usageMessage("drill", "--days", "0")
    const resource = usageMessage("drill", "--resource", "arn:aws:ec2:us-east-1:1:volume/vol-1")
    const both = usageMessage("drill", "--artifact", "s3://b/k/disk.img.zst", "--every", "7d")
    // Assess
    assert.strictEqual(period, `--every "1 week" is not a period: a whole number then m, h or d, e.g. 7d`)
    assert.strictEqual(days, `--days "0" is not a number of days from 1 to 366`)
    assert.match(resource, /--resource names the resource of the --artifact drilled/)
    assert.match(both, /--artifact drills now, whatever the schedule/)
  })
})
