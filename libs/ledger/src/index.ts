export * from "./ledger"
export * from "./step-result"
