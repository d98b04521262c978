export * from "./publisher"
export * from "./consumer"
