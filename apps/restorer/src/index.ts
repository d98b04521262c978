export { subscriptions, RestorerLive } from "./service"
export { sweepLeftovers, MANAGED_TAG, CREATED_AT_TAG } from "./volumes"
