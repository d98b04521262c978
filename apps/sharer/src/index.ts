export { subscriptions, SharerLive, onRecoveryPoint } from "./service"
