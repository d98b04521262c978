export { subscriptions, ReporterLive } from "./service"
export { ReportEntry, entryOf } from "./outcome"
export { summarize, toCsv, toHtml, toJson, type ReportSummary } from "./render"
