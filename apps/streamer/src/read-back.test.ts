import { PassThrough } from "node:stream"
import { assert, describe, it } from "@effect/vitest"
import { drainedOrClosed } from "./read-back"

describe("waiting for a read-back's input to drain", () => {
  it("leaves no listener behind after many waits that ended by draining", async () => {
    // Prepare: a stream whose buffer fills with each write and is read empty after
    const stream = new PassThrough({ highWaterMark: 16 })
    stream.resume()
    // Act
    for (let wait = 0; wait < 50; wait += 1) {
      if (!stream.write(Buffer.alloc(64))) await drainedOrClosed(stream)
    }
    // Assess
    assert.strictEqual(stream.listenerCount("close"), 0)
    assert.strictEqual(stream.listenerCount("drain"), 0)
  })

  it("ends the wait when the stream closes without draining", async () => {
    // Prepare: nobody reads, so it never drains
    const stream = new PassThrough({ highWaterMark: 16 })
    assert.isFalse(stream.write(Buffer.alloc(64)))
    // Act
    const waited = drainedOrClosed(stream)
    stream.destroy()
    await waited
    // Assess
    assert.strictEqual(stream.listenerCount("drain"), 0)
  })
})
