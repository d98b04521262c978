export { subscriptions, ReporterLive } from "./service"
export { reporterProcess } from "./process"
