/** The scheduled restore drill's CDK app: `nx deploy cli` deploys this stack (after the core stack). */
import { runServiceCdkApp } from "@backup-actions/deploy"
import { drillStack } from "./deploy"

runServiceCdkApp((app, config) => drillStack(app, config))
