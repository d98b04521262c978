export * from "./core-stack"
export * from "./backup-stack"
