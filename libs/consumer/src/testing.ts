export * from "./publisher-memory"
