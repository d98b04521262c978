import { assert, describe, it } from "@effect/vitest"
import {
  DEFAULT_PART_SIZE,
  MAX_PART_SIZE,
  MAX_PARTS,
  MIN_PART_SIZE,
  PARTS_PER_STEP,
  compressedUpperBound,
  partScheduleFor,
  partSizeAt,
  partSizeFor,
  scheduleCapacity,
  scheduleId,
  uniformSchedule
} from "./part-size"

const MiB = 1024 ** 2
const GiB = 1024 ** 3
const TiB = 1024 ** 4

describe("multipart part sizing", () => {
  it("uses the default part size while the input fits in 10,000 of them", () => {
    assert.strictEqual(partSizeFor(1 * GiB), DEFAULT_PART_SIZE)
    assert.strictEqual(partSizeFor(DEFAULT_PART_SIZE * MAX_PARTS), DEFAULT_PART_SIZE)
  })

  it("grows the part size with the input so that a 16 TiB volume still fits in 10,000 parts", () => {
    for (const size of [100 * GiB, 1 * TiB, 16 * TiB]) {
      const bound = compressedUpperBound(size)
      const part = partSizeFor(bound)
      assert.isAtMost(Math.ceil(bound / part), MAX_PARTS)
      assert.strictEqual(part % (1024 * 1024), 0)
    }
  })

  it("refuses an input that no part size can fit, such as a 64 TiB io2 volume with no room to compress", () => {
    assert.throws(() => partSizeFor(MAX_PARTS * 5 * GiB + 1), RangeError)
    assert.throws(() => partSizeFor(compressedUpperBound(64 * TiB)), /do not fit in 10000 parts/)
  })
})

/** The sizes of parts 1 to 10,000 under a schedule. */
const sizesOf = (schedule: ReturnType<typeof partScheduleFor>) => Array.from({ length: MAX_PARTS }, (_, index) => partSizeAt(schedule, index + 1))

describe("a part size schedule by part number", () => {
  it("cuts every part of an input up to about 78 GiB at the default size, as one size for all did", () => {
    // Act
    const schedule = partScheduleFor(compressedUpperBound(64 * GiB))
    // Assess
    assert.deepStrictEqual(schedule, uniformSchedule(DEFAULT_PART_SIZE))
    assert.isTrue(sizesOf(schedule).every((size) => size === DEFAULT_PART_SIZE))
  })

  it("starts a 2 TiB volume at the default size and doubles it every step, so that a few GiB written stay in small parts", () => {
    // Act
    const schedule = partScheduleFor(compressedUpperBound(2 * TiB))
    // Assess: 8 MiB for the first step's parts, then 16 and 32 MiB; the first 8 GiB of the archive are in parts of at most 32 MiB
    assert.strictEqual(partSizeAt(schedule, 1), DEFAULT_PART_SIZE)
    assert.strictEqual(partSizeAt(schedule, PARTS_PER_STEP), DEFAULT_PART_SIZE)
    assert.strictEqual(partSizeAt(schedule, PARTS_PER_STEP + 1), 2 * DEFAULT_PART_SIZE)
    assert.strictEqual(partSizeAt(schedule, 2 * PARTS_PER_STEP + 1), 4 * DEFAULT_PART_SIZE)
    let stored = 0
    let part = 1
    while (stored < 8 * GiB) stored += partSizeAt(schedule, part++)
    assert.isAtMost(partSizeAt(schedule, part - 1), 32 * MiB)
  })

  it("holds the bound in 10,000 parts with the smallest cap, every part between 5 MiB and 5 GiB and never smaller than the one before", () => {
    for (const volume of [100 * GiB, 1 * TiB, 2 * TiB, 5 * TiB, 16 * TiB, 40 * TiB]) {
      // Act
      const bound = compressedUpperBound(volume)
      const schedule = partScheduleFor(bound)
      const sizes = sizesOf(schedule)
      // Assess
      assert.isAtLeast(scheduleCapacity(schedule), bound, `${volume}`)
      assert.isBelow(scheduleCapacity({ ...schedule, largest: schedule.largest - MiB }), bound, `${volume}: a cap 1 MiB smaller would hold it too`)
      assert.strictEqual(schedule.largest % MiB, 0)
      assert.isTrue(sizes.every((size) => size >= MIN_PART_SIZE && size <= MAX_PART_SIZE), `${volume}`)
      assert.isTrue(sizes.every((size, index) => index === 0 || size >= (sizes[index - 1] ?? 0)), `${volume}`)
      assert.strictEqual(Math.max(...sizes), schedule.largest)
    }
  })

  it("keeps the largest part of a dense 2 TiB volume within an eighth of the one size for all", () => {
    // Act
    const bound = compressedUpperBound(2 * TiB)
    // Assess: starting small costs a little more at the end than cutting every part alike
    assert.isAtMost(partScheduleFor(bound).largest, partSizeFor(bound) * 1.125)
  })

  it("is a pure function of the part number, so that a resumed upload cuts its parts as the first attempt did", () => {
    // Act
    const first = partScheduleFor(compressedUpperBound(2 * TiB))
    const again = partScheduleFor(compressedUpperBound(2 * TiB))
    // Assess
    assert.deepStrictEqual(again, first)
    assert.strictEqual(scheduleId(again), scheduleId(first))
    assert.deepStrictEqual(sizesOf(again).slice(4_000, 4_010), sizesOf(first).slice(4_000, 4_010))
  })

  it("names every schedule apart, and a uniform one by its size, as an upload recorded before schedules was", () => {
    // Prepare: schedules for volumes whose uniform size and growing cap meet (100 GiB: 11 MiB both), or not
    const schedules = [100 * GiB, 1 * TiB, 2 * TiB, 16 * TiB].flatMap((volume) => {
      const bound = compressedUpperBound(volume)
      return [partScheduleFor(bound), uniformSchedule(partSizeFor(bound))]
    })
    // Act
    const ids = schedules.map(scheduleId)
    // Assess
    assert.strictEqual(new Set(ids).size, schedules.length)
    assert.strictEqual(scheduleId(uniformSchedule(DEFAULT_PART_SIZE)), DEFAULT_PART_SIZE)
    assert.strictEqual(scheduleId(uniformSchedule(partSizeFor(compressedUpperBound(2 * TiB)))), partSizeFor(compressedUpperBound(2 * TiB)))
  })

  it("falls back to one size for all when a growing schedule cannot hold the bound, and still refuses what no parts can hold", () => {
    // Prepare: 45 TiB fits 10,000 parts of 5 GiB, not a schedule that starts at 8 MiB
    const bound = compressedUpperBound(45 * TiB)
    // Act
    const schedule = partScheduleFor(bound)
    // Assess
    assert.deepStrictEqual(schedule, uniformSchedule(partSizeFor(bound)))
    assert.isAtLeast(scheduleCapacity(schedule), bound)
    assert.throws(() => partScheduleFor(compressedUpperBound(64 * TiB)), RangeError)
  })
})
