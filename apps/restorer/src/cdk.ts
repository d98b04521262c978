/** The restorer's CDK app: `nx deploy restorer` deploys this stack (after the core stack). */
import { runServiceCdkApp } from "@backup-actions/deploy"
import { restorerStack } from "./deploy"

runServiceCdkApp((app, config) => restorerStack(app, config))
