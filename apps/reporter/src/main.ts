import { runServiceProcess } from "@backup-actions/consumer"
import { reporterProcess } from "./process"
import { ReporterLive } from "./service"

runServiceProcess(reporterProcess, ReporterLive)
