export * from "./publisher"
export * from "./consumer"
export * from "./service-main"
export * from "./lambda"
