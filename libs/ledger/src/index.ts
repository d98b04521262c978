export * from "./ledger"
export * from "./step-result"
export * from "./drills"
