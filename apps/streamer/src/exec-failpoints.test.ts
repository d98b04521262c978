import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, assert, describe, it } from "@effect/vitest"
import { vi } from "vitest"
import { ConfigProvider, Duration, Effect, Option } from "effect"
import type { ChunkSource } from "./archive-pipeline"
import { exitedCleanly, spawnTool } from "./exec"
import { processStatesOf, processesLeftOf } from "./test-support"
import { tarSource } from "./volume"

// Armed before any module reads the variable (failpoints are parsed once, when loaded).
vi.hoisted(() => {
  process.env["BACKUP_ACTIONS_FAILPOINTS"] = "spawn:hanging-tool=hang,spawn:dying-tool=kill,spawn:tar=hang*1"
})
afterAll(() => {
  delete process.env["BACKUP_ACTIONS_FAILPOINTS"]
})

const scratch = mkdtempSync(join(tmpdir(), "failpoints-test-"))
afterAll(() => rmSync(scratch, { recursive: true, force: true }))

/** A tool of its own name (failpoints name tools by their file name) that writes a line, then a second one later. */
const toolNamed = (name: string): string => {
  const path = join(scratch, name)
  writeFileSync(path, "#!/bin/sh\necho started\nsleep 1\necho done\n")
  chmodSync(path, 0o755)
  return path
}

const drain = <E>(source: ChunkSource<E>) =>
  Effect.gen(function* () {
    while (Option.isSome(yield* source.pull));
  })

describe("the spawn failpoints of the fault suite", () => {
  it.scopedLive("hang: the tool is really stopped, and its inactivity limit kills it", () =>
    Effect.gen(function* () {
      // Prepare
      const tool = yield* spawnTool({ command: toolNamed("hanging-tool"), args: [], limits: { inactivity: Duration.millis(500) } })
      // Act
      yield* Effect.sleep(Duration.millis(100))
      const states = [...processStatesOf(tool.pid).values()]
      const error = yield* Effect.flip(tool.exit)
      // Assess
      assert.include(states, "T")
      assert.deepStrictEqual({ tool: error.tool, limit: error.limit, timeout: error.timeout }, { tool: "hanging-tool", limit: "inactivity", timeout: "500ms" })
      assert.deepStrictEqual(yield* processesLeftOf(tool.pid), [])
    })
  )

  it.scopedLive("kill: the tool dies at once of SIGKILL, and its failure says so", () =>
    Effect.gen(function* () {
      // Prepare
      const tool = yield* spawnTool({ command: toolNamed("dying-tool"), args: [], limits: { inactivity: Duration.seconds(30) } })
      // Act
      const error = yield* Effect.flip(exitedCleanly(tool))
      // Assess
      assert.strictEqual(error._tag, "CommandFailed")
      assert.deepStrictEqual(error._tag === "CommandFailed" ? [error.command, error.exitCode, error.stderr] : [], ["dying-tool", null, "killed by SIGKILL"])
    })
  )

  it.scopedLive("spawn:tar=hang: a hung tar is killed after the silence the service allows, and fails the archive's source naming tar", () =>
    Effect.gen(function* () {
      // Prepare: the short silence the fault suite configures
      writeFileSync(join(scratch, "file"), "content\n")
      const config = ConfigProvider.fromMap(new Map([["BACKUP_ACTIONS_TOOL_INACTIVITY_SECONDS", "1"]]))
      // Act
      const source = yield* tarSource(scratch).pipe(Effect.withConfigProvider(config))
      const [millis, error] = yield* Effect.timed(Effect.flip(drain(source))).pipe(Effect.map(([duration, failure]) => [Duration.toMillis(duration), failure] as const))
      // Assess
      assert.deepStrictEqual(error._tag === "CommandFailed" ? [error.command, error.exitCode, error.stderr] : [error._tag], ["tar", null, "tar wrote nothing for 1s and was killed"])
      assert.isAtLeast(millis, 1_000)
      assert.isBelow(millis, 5_000)
    })
  )
})
