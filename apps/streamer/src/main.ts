import { runServiceProcess } from "@backup-actions/consumer"
import { streamerProcess } from "./process"
import { StreamerLive } from "./service"

runServiceProcess(streamerProcess, StreamerLive)
