import { runServiceProcess } from "@backup-actions/consumer"
import { RestorerLive, restorerProcess } from "@backup-actions/restorer"

// Nothing the restorer uses differs on the emulator: its production assembly runs as it is.
runServiceProcess(restorerProcess, RestorerLive)
