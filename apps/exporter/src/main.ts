import { runServiceProcess } from "@backup-actions/consumer"
import { exporterProcess } from "./process"
import { ExporterLive } from "./service"

runServiceProcess(exporterProcess, ExporterLive)
