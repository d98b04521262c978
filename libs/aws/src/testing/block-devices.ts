import { Effect, Layer } from "effect"
import { BlockDevices, DeviceUnavailable, type BlockDevicesShape } from "../block-devices"

/**
 * Block devices in memory, for tests of what a handler does with a restored volume without
 * attaching one: `devices` says which volume shows up as which device path, and any other
 * volume is unavailable. `attached` lists the volumes attached and not yet released, `requests`
 * every attach asked for, in order.
 */
export const makeMemoryBlockDevices = (devices: Readonly<Record<string, string>> = {}) => {
  const requests: Array<string> = []
  const attached = new Set<string>()
  const shape: BlockDevicesShape = {
    attach: (volumeId) =>
      Effect.suspend(() => {
        requests.push(volumeId)
        const device = devices[volumeId]
        if (device === undefined) return Effect.fail(new DeviceUnavailable({ volumeId, reason: "no device for this volume in the test" }))
        return Effect.acquireRelease(
          Effect.sync(() => (attached.add(volumeId), device)),
          () => Effect.sync(() => attached.delete(volumeId))
        )
      })
  }
  return { requests, attached, blockDevices: shape, layer: Layer.succeed(BlockDevices, shape) }
}

/** In-memory block devices as a layer, with no device for any volume. */
export const MemoryBlockDevices = Layer.sync(BlockDevices, () => makeMemoryBlockDevices().blockDevices)
