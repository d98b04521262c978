export * from "./ledger"
export * from "./run-step"
