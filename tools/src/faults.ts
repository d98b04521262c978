import { SCENARIOS, formatResults, runScenario, type ScenarioResult } from "./fault-scenarios"
import { startFaultWorld, stopFaultWorld } from "./fault-harness"

/**
 * `npm run faults`: the real services on the emulator, killed or failed at named points, one
 * recovery point per scenario; prints what held and exits non-zero when anything did not.
 * `--only <text>[,<text>...]` runs the scenarios whose name contains one of the texts.
 */
const only = process.argv.indexOf("--only") >= 0 ? (process.argv[process.argv.indexOf("--only") + 1] ?? "").split(",") : undefined
const selected = SCENARIOS.filter((scenario) => only === undefined || only.some((text) => scenario.name.includes(text)))

const main = async (): Promise<number> => {
  const started = Date.now()
  const world = await startFaultWorld()
  const results: Array<ScenarioResult> = []
  try {
    for (const [index, scenario] of selected.entries()) {
      process.stdout.write(`faults: ${scenario.name} ...\n`)
      const result = await runScenario(world, scenario, index)
      process.stdout.write(`faults: ${scenario.name}: ${result.violations.length === 0 ? "held" : `NOT HELD: ${result.violations.join("; ")}`} (${result.seconds} s)\n`)
      results.push(result)
    }
  } finally {
    await stopFaultWorld(world)
  }
  process.stdout.write(`\n${formatResults(results)} in ${Math.round((Date.now() - started) / 1000)} s\n`)
  return results.every((result) => result.violations.length === 0) ? 0 : 1
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`faults: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`)
    process.exit(2)
  }
)
