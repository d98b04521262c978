import { runServiceProcess } from "@backup-actions/consumer"
import { withLocalStandIns } from "@backup-actions/local"
import { SharerClients, SharerServices, sharerProcess } from "@backup-actions/sharer"

// The sharer as the local runtime runs it: the process its production entry runs, with the local stand-ins.
runServiceProcess(sharerProcess, withLocalStandIns(SharerServices, SharerClients))
