import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Duration, Effect, Exit, Fiber, Redacted, Scope } from "effect"
import { KILL_GRACE, SHORT_COMMAND, STREAMING_TOOL, run, spawnTool, streamingToolLimits } from "./exec"
import { drainTool, processesLeftOf } from "./test-support"

const SECRET = "Zq8pW3nR5tY7uI9oP1aS2dF4gH6jK0lX"

const elapsedMillis = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.map(Effect.timed(effect), ([duration, result]) => [Duration.toMillis(duration), result] as const)

describe("spawned tools' limits", () => {
  it("are named constants: two minutes for a short command, a silence limit and no runtime limit for a streaming tool", () => {
    // Assess
    assert.deepStrictEqual(SHORT_COMMAND, { runtime: Duration.minutes(2) })
    assert.deepStrictEqual(STREAMING_TOOL, { inactivity: Duration.minutes(30) })
    assert.deepStrictEqual(KILL_GRACE, Duration.seconds(10))
  })

  it.effect("give streaming tools the silence BACKUP_ACTIONS_TOOL_INACTIVITY_SECONDS allows, when it is set", () =>
    Effect.gen(function* () {
      // Act
      const unset = yield* streamingToolLimits.pipe(Effect.withConfigProvider(ConfigProvider.fromMap(new Map())))
      const set = yield* streamingToolLimits.pipe(Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["BACKUP_ACTIONS_TOOL_INACTIVITY_SECONDS", "20"]]))))
      const zero = yield* Effect.exit(streamingToolLimits.pipe(Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["BACKUP_ACTIONS_TOOL_INACTIVITY_SECONDS", "0"]])))))
      // Assess
      assert.deepStrictEqual(unset, STREAMING_TOOL)
      assert.deepStrictEqual(set, { inactivity: Duration.seconds(20) })
      assert.isTrue(Exit.isFailure(zero))
    })
  )

  it.live("kill a command that runs past its runtime limit, with and after its children, naming the tool, the limit and its last stderr lines without the secret", () =>
    Effect.gen(function* () {
      // Prepare: a command that says why it waits, then waits (in a child of its own) for much longer than it may
      const script = `echo "waiting for the lock" >&2; echo "held by ${SECRET}" >&2; sleep 30 & wait`
      // Act
      const [millis, error] = yield* elapsedMillis(
        Effect.flip(run("sh", ["-c", script], { limits: { runtime: Duration.millis(400) }, secrets: [Redacted.make(SECRET)] }))
      )
      // Assess
      assert.strictEqual(error._tag, "ToolTimedOut")
      if (error._tag !== "ToolTimedOut") return
      assert.deepStrictEqual({ tool: error.tool, limit: error.limit, timeout: error.timeout, stderr: error.stderr }, {
        tool: "sh",
        limit: "runtime",
        timeout: "400ms",
        stderr: "waiting for the lock | held by <redacted>"
      })
      assert.strictEqual(error.message, "sh ran longer than 400ms and was killed; its last stderr: waiting for the lock | held by <redacted>")
      assert.isAtLeast(millis, 400)
      assert.isBelow(millis, 5_000)
    })
  )

  it.live("hold where a command acquires a resource (uninterruptibly), and cost it no wait beyond the command", () =>
    Effect.gen(function* () {
      // Prepare: commands run as a mount or a loop device is acquired
      const acquiring = <A, E>(effect: Effect.Effect<A, E>) => Effect.scoped(Effect.acquireRelease(effect, () => Effect.void))
      // Act
      const [hungMillis, error] = yield* elapsedMillis(Effect.flip(acquiring(run("sleep", ["30"], { limits: { runtime: Duration.millis(300) } }))))
      const [quickMillis] = yield* elapsedMillis(acquiring(run("true", [])))
      // Assess
      assert.strictEqual(error._tag, "ToolTimedOut")
      assert.isBelow(hungMillis, 2_000)
      assert.isBelow(quickMillis, 500)
    })
  )

  it.live("leave no process of a timed-out tool behind, its children included", () =>
    Effect.gen(function* () {
      // Prepare
      const scope = yield* Scope.make()
      const tool = yield* spawnTool({ command: "sh", args: ["-c", "sleep 30 & sleep 30 & wait"], limits: { runtime: Duration.millis(300) } }).pipe(
        Scope.extend(scope)
      )
      // Act
      const error = yield* Effect.flip(tool.exit)
      // Assess: the whole group is gone once the exit is reported
      assert.strictEqual(error._tag, "ToolTimedOut")
      assert.deepStrictEqual(yield* processesLeftOf(tool.pid), [])
      yield* Scope.close(scope, Exit.void)
    })
  )

  it.scopedLive("kill a streaming tool that stops writing, and let one that keeps writing run past that limit", () =>
    Effect.gen(function* () {
      // Prepare: one writes a line every 50 ms for a second, the other writes a line and goes silent
      const limits = { inactivity: Duration.millis(400) }
      const steady = yield* spawnTool({ command: "sh", args: ["-c", "for i in $(seq 20); do echo line $i; sleep 0.05; done"], limits })
      const silent = yield* spawnTool({ command: "sh", args: ["-c", "echo first line; echo stuck >&2; sleep 30"], limits })
      // Act
      const [steadyBytes, silentBytes] = yield* Effect.all([drainTool(steady), drainTool(silent)], { concurrency: 2 })
      const steadyExit = yield* steady.exit
      const silentError = yield* Effect.flip(silent.exit)
      // Assess
      assert.strictEqual(steadyExit.code, 0)
      assert.strictEqual(steadyBytes, Array.from({ length: 20 }, (_, index) => `line ${index + 1}\n`).join("").length)
      assert.strictEqual(silentBytes, "first line\n".length)
      assert.deepStrictEqual({ limit: silentError.limit, timeout: silentError.timeout, stderr: silentError.stderr }, { limit: "inactivity", timeout: "400ms", stderr: "stuck" })
    })
  )

  it.scopedLive("do not count against a streaming tool the time its output waits unread", () =>
    Effect.gen(function* () {
      // Prepare: far more output than the pipe holds, so that the tool blocks until it is read
      const tool = yield* spawnTool({ command: "head", args: ["-c", "20000000", "/dev/zero"], limits: { inactivity: Duration.millis(300) } })
      // Act: the reader is busy elsewhere for five times the limit, then reads
      yield* Effect.sleep(Duration.millis(1_500))
      const bytes = yield* drainTool(tool)
      const exit = yield* tool.exit
      // Assess
      assert.strictEqual(bytes, 20_000_000)
      assert.strictEqual(exit.code, 0)
    })
  )

  it.scopedLive("keep the output of a tool that exited before it was read", () =>
    Effect.gen(function* () {
      // Prepare: a tool that writes a little and exits at once
      const tool = yield* spawnTool({ command: "sh", args: ["-c", "printf 'a small output'"], limits: STREAMING_TOOL })
      const exit = yield* tool.exit
      yield* Effect.sleep(Duration.millis(100))
      // Act
      const bytes = yield* drainTool(tool)
      // Assess
      assert.strictEqual(exit.code, 0)
      assert.strictEqual(bytes, "a small output".length)
    })
  )
})

describe("a spawned tool tied to its scope", () => {
  it.live("gets SIGTERM when its fiber is interrupted, and has exited, children included, when the interruption returns", () =>
    Effect.gen(function* () {
      // Prepare: a tool with no limit that would run for half a minute
      let pid: number | undefined
      const fiber = yield* Effect.fork(
        Effect.scoped(
          Effect.gen(function* () {
            const tool = yield* spawnTool({ command: "sh", args: ["-c", "sleep 30 & wait"], limits: STREAMING_TOOL })
            pid = tool.pid
            return yield* tool.exit
          })
        )
      )
      yield* Effect.sleep(Duration.millis(200))
      // Act
      const [millis] = yield* elapsedMillis(Fiber.interrupt(fiber))
      // Assess
      assert.isDefined(pid)
      assert.deepStrictEqual(yield* processesLeftOf(pid), [])
      assert.isBelow(millis, 2_000)
    })
  )

  it.live("gets SIGKILL after the grace period when it ignores SIGTERM", () =>
    Effect.gen(function* () {
      // Prepare: a tool that ignores SIGTERM and has started ignoring it
      let pid: number | undefined
      const fiber = yield* Effect.fork(
        Effect.scoped(
          Effect.gen(function* () {
            const tool = yield* spawnTool({
              command: "sh",
              args: ["-c", "trap '' TERM; echo ready; while :; do sleep 0.05; done"],
              limits: STREAMING_TOOL,
              killGrace: Duration.millis(500)
            })
            pid = tool.pid
            yield* Effect.promise(() => new Promise((ready) => tool.stdout.once("data", ready)))
            return yield* Effect.never
          })
        )
      )
      yield* Effect.sleep(Duration.millis(300))
      // Act
      const [millis] = yield* elapsedMillis(Fiber.interrupt(fiber))
      // Assess
      assert.deepStrictEqual(yield* processesLeftOf(pid), [])
      assert.isAtLeast(millis, 500)
      assert.isBelow(millis, 3_000)
    })
  )

  it.live("says why a command failed: its exit code or signal and its last stderr lines", () =>
    Effect.gen(function* () {
      // Act
      const exited = yield* Effect.flip(run("sh", ["-c", "echo 'blkid: cannot open' >&2; exit 2"]))
      const killed = yield* Effect.flip(run("sh", ["-c", "echo 'half-way' >&2; kill -9 $$"]))
      const missing = yield* Effect.flip(run("no-such-tool", []))
      // Assess
      assert.deepStrictEqual(
        [exited, killed, missing].map((error) => (error._tag === "CommandFailed" ? [error.command, error.exitCode, error.stderr] : [error._tag])),
        [
          ["sh -c echo 'blkid: cannot open' >&2; exit 2", 2, "blkid: cannot open"],
          ["sh -c echo 'half-way' >&2; kill -9 $$", null, "killed by SIGKILL; half-way"],
          ["no-such-tool", null, "could not start: spawn no-such-tool ENOENT"]
        ]
      )
    })
  )
})
