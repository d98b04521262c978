/** The sharer's CDK app: `nx deploy sharer` deploys this stack (after the core stack). */
import { runServiceCdkApp } from "@backup-actions/deploy"
import { sharerStack } from "./deploy"

runServiceCdkApp((app, config) => sharerStack(app, config))
