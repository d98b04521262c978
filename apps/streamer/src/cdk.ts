/** The streamer's CDK app: `nx deploy streamer` deploys this stack (after the core stack). */
import { runServiceCdkApp } from "@backup-actions/deploy"
import { streamerStack } from "./deploy"

runServiceCdkApp((app, config) => streamerStack(app, config))
