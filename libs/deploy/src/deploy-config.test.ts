import { assert, describe, it } from "@effect/vitest"
import { parseDeployConfig } from "./deploy-config"

const parse = (value: unknown) => parseDeployConfig(JSON.stringify(value), "deploy.json")
const messageOf = (value: unknown): string => {
  const parsed = parse(value)
  return parsed._tag === "Left" ? parsed.left.message : "accepted"
}

describe("the deployment configuration", () => {
  it("fills in the defaults around an account and a region", () => {
    // Act
    const parsed = parse({ account: "111122223333", region: "eu-west-1" })
    // Assess
    assert.strictEqual(parsed._tag, "Right")
    if (parsed._tag === "Right") {
      assert.strictEqual(parsed.right.prefix, "backup-actions")
      assert.strictEqual(parsed.right.bus.archiveRetentionDays, 365)
      assert.strictEqual(parsed.right.streamer.compute, "ec2")
      assert.isTrue(parsed.right.bucket.versioned)
    }
  })

  it("names the field that is wrong", () => {
    // Act and Assess
    assert.strictEqual(messageOf({ account: "1234", region: "eu-west-1" }), "deploy.json: account: account must be a 12-digit AWS account id")
    assert.include(messageOf({ account: "111122223333", region: "eu-west-1", colour: "blue" }), "colour")
  })

  it("refuses lifecycle transitions out of order", () => {
    // Act
    const message = messageOf({ account: "111122223333", region: "eu-west-1", bucket: { lifecycle: { glacierAfterDays: 90, deepArchiveAfterDays: 30 } } })
    // Assess
    assert.include(message, "deepArchiveAfterDays must come after glacierAfterDays")
  })

  it("says that a file that is not JSON is not JSON", () => {
    // Act
    const parsed = parseDeployConfig("{ account:", "deploy.json")
    // Assess
    assert.include(parsed._tag === "Left" ? parsed.left.message : "", "deploy.json: not JSON")
  })
})
