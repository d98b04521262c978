/** The reporter's CDK app: `nx deploy reporter` deploys this stack (after the core stack). */
import { runServiceCdkApp } from "@backup-actions/deploy"
import { reporterStack } from "./deploy"

runServiceCdkApp((app, config) => reporterStack(app, config))
