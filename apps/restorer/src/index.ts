export { subscriptions, RestorerLive } from "./service"
export { restorerProcess } from "./process"
export { sweepLeftovers, MANAGED_TAG, CREATED_AT_TAG } from "./volumes"
