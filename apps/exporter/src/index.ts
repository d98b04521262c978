export { subscriptions, ExporterLive } from "./service"
