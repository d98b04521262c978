export { subscriptions, StreamerLive, StreamerServices, StreamerClients } from "./service"
export { streamerProcess } from "./process"
export { archiveKeys } from "./keys"
export { TAR_ARGS } from "./volume"
