import { runServiceProcess } from "@backup-actions/consumer"
import { restorerProcess } from "./process"
import { RestorerLive } from "./service"

runServiceProcess(restorerProcess, RestorerLive)
