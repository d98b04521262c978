/**
 * The CDK app of the shared stacks: `nx run infra:synth` synthesizes them (and, through its
 * dependencies, every service's stack), `nx run infra:deploy` deploys them.
 */
import { join } from "node:path"
import { App, Validations } from "aws-cdk-lib"
import { AwsSolutionsChecks } from "cdk-nag"
import { deployContext, loadDeployConfig, workspaceRootForDeploy } from "@backup-actions/deploy"
import { BackupStack } from "./backup-stack"
import { CoreStack } from "./core-stack"

const config = loadDeployConfig(join(workspaceRootForDeploy(), "infra", "config", "example.json"))
const app = new App({ context: deployContext(config) })
new CoreStack(app, "Core", { config })
const vault = config.vault
if (vault !== undefined) new BackupStack(app, "Backup", { config: { ...config, vault } })
Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }))
app.synth()
