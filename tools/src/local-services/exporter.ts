import { runServiceProcess } from "@backup-actions/consumer"
import { withLocalStandIns } from "@backup-actions/local"
import { ExporterClients, ExporterServices, exporterProcess } from "@backup-actions/exporter"

// The exporter as the local runtime runs it: the process its production entry runs, with the local stand-ins.
runServiceProcess(exporterProcess, withLocalStandIns(ExporterServices, ExporterClients))
