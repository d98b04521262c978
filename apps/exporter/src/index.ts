export { subscriptions, ExporterLive, ExporterServices, ExporterClients } from "./service"
export { exporterProcess } from "./process"
