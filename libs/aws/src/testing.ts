/** In-memory stand-ins of this library's services, for tests of handlers' decisions: never imported by runtime code. */
export * from "./testing/recovery-points"
export * from "./testing/block-devices"
export * from "./testing/database-endpoints"
export * from "./testing/snapshot-sharing"
export * from "./testing/fixed"
