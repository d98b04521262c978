export { subscriptions, ReporterLive } from "./service"
