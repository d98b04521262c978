import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { SCENARIOS, formatResults, runScenario, type ScenarioResult } from "./fault-scenarios"
import { startFaultWorld, stopFaultWorld, type FaultWorld } from "./fault-harness"

/**
 * The fault suite's scenarios that strike one part of the product, as tests, in a world (an
 * emulator, a stack, the services' processes) of their own: the halves run side by side.
 */
export const describeFaultScenarios = (strikes: "runtime" | "data"): void => {
  let world: FaultWorld
  const results: Array<ScenarioResult> = []

  beforeAll(async () => {
    world = await startFaultWorld(`faults-${strikes}`)
  })

  afterAll(async () => {
    if (results.length > 0) process.stdout.write(`\n${formatResults(results)}\n`)
    if (world !== undefined) await stopFaultWorld(world)
  })

  describe(`the fault suite, faults in the ${strikes === "runtime" ? "step runtime" : "data path"}: real services killed or failed at named points`, () => {
    for (const [index, scenario] of SCENARIOS.entries()) {
      if (scenario.strikes !== strikes) continue
      it(`${scenario.name}: no source deleted unverified, no artifact lost, one outcome event, nothing left running or behind, dead letters with their reason`, async () => {
        // Act
        const result = await runScenario(world, scenario, index)
        results.push(result)
        // Assess
        assert.deepStrictEqual(result.violations, [])
      }, 300_000)
    }
  })
}
