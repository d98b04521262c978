import { runServiceProcess } from "@backup-actions/consumer"
import { ReporterLive, reporterProcess } from "@backup-actions/reporter"

// Nothing the reporter uses differs on the emulator: its production assembly runs as it is.
runServiceProcess(reporterProcess, ReporterLive)
