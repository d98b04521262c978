export * from "./deploy-config"
export * from "./core-names"
export * from "./service-queue"
export * from "./service-stack"
