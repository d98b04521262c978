/**
 * What the stacks' tests share: a test configuration, synthesis with the cdk-nag checks, the
 * checks every service stack passes, and the IAM coverage of the runtime's AWS calls. Its own
 * entry point, so that a CDK app never loads aws-cdk-lib/assertions, cdk-nag or the TypeScript
 * compiler.
 */
export * from "./test-support"
export * from "./iam-coverage"
