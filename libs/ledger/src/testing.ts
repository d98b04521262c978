export * from "./ledger-memory"
