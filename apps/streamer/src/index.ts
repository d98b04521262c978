export { subscriptions, StreamerLive } from "./service"
export { archiveKeys } from "./keys"
export { TAR_ARGS } from "./volume"
