export * from "./ledger"
