/** The exporter's CDK app: `nx deploy exporter` deploys this stack (after the core stack). */
import { runServiceCdkApp } from "@backup-actions/deploy"
import { exporterStack } from "./deploy"

runServiceCdkApp((app, config) => exporterStack(app, config))
