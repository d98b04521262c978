import { runServiceProcess } from "@backup-actions/consumer"
import { sharerProcess } from "./process"
import { SharerLive } from "./service"

runServiceProcess(sharerProcess, SharerLive)
