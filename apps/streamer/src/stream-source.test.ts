import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Readable } from "node:stream"
import { afterAll, assert, describe, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import { CHUNK_BYTES } from "./ebs-direct-source"
import { fileChunkSource, streamChunkSource } from "./stream-source"
import type { ChunkSource } from "./archive-pipeline"

const scratch = mkdtempSync(join(tmpdir(), "stream-source-test-"))
afterAll(() => rmSync(scratch, { recursive: true, force: true }))

const drain = <E>(source: ChunkSource<E>) =>
  Effect.gen(function* () {
    const chunks: Array<{ inputBytes: number; hole: boolean; lines: number }> = []
    while (true) {
      const job = yield* source.pull
      if (Option.isNone(job)) return chunks
      const produced = yield* job.value.produce
      chunks.push({ inputBytes: job.value.inputBytes, hole: Option.isNone(produced.bytes), lines: produced.manifestLines.length })
      if (job.value.release !== undefined) yield* job.value.release
    }
  })

describe("chunk sources", () => {
  it.scoped("cuts a file into 4 MiB chunks, reports zero chunks as holes, and lists the others in the manifest", () =>
    Effect.gen(function* () {
      // Prepare: data, a hole, data, and a short tail
      const file = join(scratch, "disk.img")
      writeFileSync(file, Buffer.concat([Buffer.alloc(CHUNK_BYTES, 1), Buffer.alloc(CHUNK_BYTES), Buffer.alloc(CHUNK_BYTES, 2), Buffer.alloc(1000, 3)]))
      // Act
      const source = yield* fileChunkSource(file, 3 * CHUNK_BYTES + 1000, { detectHoles: true, buffers: 2 })
      const chunks = yield* drain(source)
      // Assess
      assert.deepStrictEqual(chunks, [
        { inputBytes: CHUNK_BYTES, hole: false, lines: 1 },
        { inputBytes: CHUNK_BYTES, hole: true, lines: 0 },
        { inputBytes: CHUNK_BYTES, hole: false, lines: 1 },
        { inputBytes: 1000, hole: false, lines: 1 }
      ])
    })
  )

  it.scoped("fails with a clear reason when the file is shorter than announced", () =>
    Effect.gen(function* () {
      const file = join(scratch, "short.img")
      writeFileSync(file, Buffer.alloc(100, 1))
      const source = yield* fileChunkSource(file, 200, { detectHoles: true, buffers: 2 })
      const error = yield* Effect.flip(drain(source))
      assert.match(error.reason, /short read at 0: 100 of 200 bytes/)
    })
  )

  it.effect("regroups a stream's small pieces into whole chunks without losing a byte", () =>
    Effect.gen(function* () {
      const pieces = Array.from({ length: 200 }, (_, index) => Buffer.alloc(65_536, index % 251))
      const source = streamChunkSource("pieces", Readable.from(pieces), { detectHoles: false })
      const chunks = yield* drain(source)
      assert.deepStrictEqual(
        chunks.map((chunk) => chunk.inputBytes),
        [CHUNK_BYTES, CHUNK_BYTES, CHUNK_BYTES, 200 * 65_536 - 3 * CHUNK_BYTES]
      )
    })
  )
})
