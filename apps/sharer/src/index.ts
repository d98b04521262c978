export { subscriptions, SharerLive, SharerServices, SharerClients, onRecoveryPoint } from "./service"
export { sharerProcess } from "./process"
