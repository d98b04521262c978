import { runServiceProcess } from "@backup-actions/consumer"
import { withLocalStandIns } from "@backup-actions/local"
import { StreamerClients, StreamerServices, streamerProcess } from "@backup-actions/streamer"

// The streamer as the local runtime runs it: the process its production entry runs, with the local stand-ins.
runServiceProcess(streamerProcess, withLocalStandIns(StreamerServices, StreamerClients))
