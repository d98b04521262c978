import { assert, describe, it } from "@effect/vitest"
import { millisUntilNext, scheduleExpression } from "./schedules"

describe("schedules", () => {
  it("writes a daily cadence as an EventBridge Scheduler cron expression in UTC", () => {
    // Act
    const expression = scheduleExpression({ every: "day", hourUtc: 0, minuteUtc: 5 })
    // Assess
    assert.strictEqual(expression, "cron(5 0 * * ? *)")
  })

  it("fires a daily cadence later today when its time has not come yet, else tomorrow", () => {
    // Prepare
    const cadence = { every: "day", hourUtc: 0, minuteUtc: 5 } as const
    // Act
    const beforeIt = millisUntilNext(cadence, Date.parse("2026-11-22T00:04:00Z"))
    const afterIt = millisUntilNext(cadence, Date.parse("2026-11-22T00:05:00Z"))
    // Assess
    assert.strictEqual(beforeIt, 60_000)
    assert.strictEqual(afterIt, 86_400_000)
  })
})
